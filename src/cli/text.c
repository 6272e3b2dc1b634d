/* text.c - UTF-8 decoding for the checks in cli/cli.h. */
#include <stdint.h>
#include <string.h>

#include "cli/cli.h"

/* Decodes one character at s (n bytes left). Returns its length, or 0 when
 * the bytes there are not well-formed UTF-8. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2, c = s[0] & 0x1F, min = 0x80;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3, c = s[0] & 0x0F, min = 0x800;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

bool vz_digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool vz_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = decode(p + i, len - i, &cp);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

bool vz_text_printable(const char *s, size_t max_chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), chars = 0;
	uint32_t cp;

	for (size_t i = 0; i < len; chars++) {
		size_t n = decode(p + i, len - i, &cp);

		if (n == 0 || is_control(cp) || chars == max_chars)
			return false;
		i += n;
	}
	return true;
}

void vz_text_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t len = strlen(s), w = 0;
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = decode(p + i, len - i, &cp);

		if (n == 0) {
			p[w++] = '?';
			i++;
		} else if (is_control(cp)) {
			p[w++] = ' ';
			i += n;
		} else {
			memmove(p + w, p + i, n);
			w += n;
			i += n;
		}
	}
	p[w] = '\0';
}
