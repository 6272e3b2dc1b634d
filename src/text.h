/* text.h - UTF-8 checks and cleaning for text that crosses a trust
 * boundary: CSV fields on their way into XML, server text on its way to a
 * terminal or a log. */
#ifndef VZP11_TEXT_H
#define VZP11_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) in s[0..len). */
bool vz_utf8_valid(const char *s, size_t len);

/* s is well-formed UTF-8 without control characters (C0, DEL, C1) and has
 * at most max_chars characters. */
bool vz_text_printable(const char *s, size_t max_chars);

/* s is exactly n ASCII digits. */
bool vz_digits(const char *s, size_t n);

/* Cleans s in place for a terminal or log: control characters (C0, DEL,
 * C1) become a space, bytes that are not UTF-8 become '?'. */
void vz_text_clean(char *s);

#endif
