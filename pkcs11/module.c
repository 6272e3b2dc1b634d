/* module.c - loading PKCS#11 modules through p11-kit, finding tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "tok-int.h"

static bool is_path(const char *module)
{
	return strchr(module, '/') != NULL || strstr(module, ".so") != NULL;
}

/* C_Initialize, with the module's own arguments when there are any. p11-kit
 * hands them on as given (they take the place of x-init-reserved). */
static CK_RV init_module(CK_FUNCTION_LIST *m, const char *args)
{
	CK_C_INITIALIZE_ARGS ia;

	if (!args)
		return p11_kit_module_initialize(m);
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	ia.pReserved = (void *)args;
	return m->C_Initialize(&ia);
}

/* C_Initialize failed: with init arguments, the likely cause is them. */
static tok_rv init_failed(const tok_lib *lib, const char *module, CK_RV rv, tok_err *err)
{
	tok_rv r = tok_err_ckr(err, "C_Initialize", rv);

	if (!lib->module_args &&
	    (rv == CKR_ARGUMENTS_BAD || rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED))
		tok_err_hint(err,
			     "the module %s may need initialization arguments (NSS softoken: "
			     "configdir=...): give them with --module-args",
			     module);
	else if (lib->module_args)
		tok_err_hint(err,
			     "check --module-args (module-args): the module %s did not start "
			     "with them",
			     module);
	return r;
}

/* Module arguments belong to one named module; lib keeps a copy. */
static tok_rv keep_module_args(tok_lib *lib, const char *module, const char *module_args,
			       tok_err *err)
{
	if (module_args && !module) {
		tok_err_set(err, "--module-args (module-args) are the arguments of one module, but "
				 "no module is named");
		tok_err_hint(err, "name the module they belong to with --module");
		return TOK_ERR;
	}
	if (module_args) {
		lib->module_args = strdup(module_args);
		if (!lib->module_args) {
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
	}
	return TOK_OK;
}

/* Loads the module file that module names, or else every module registered
 * with p11-kit; *n is how many were loaded. */
static tok_rv load_modules(tok_lib *lib, const char *module, size_t *n, tok_err *err)
{
	if (module && is_path(module)) {
		lib->single = p11_kit_module_load(module, P11_KIT_MODULE_CRITICAL);
		if (!lib->single) {
			tok_err_set(err, "cannot load the PKCS#11 module %s: %s", module,
				    p11_kit_message() ? p11_kit_message() : _("unknown reason"));
			tok_err_hint(err,
				     "give the full path of the vendor's PKCS#11 library (.so)");
			return TOK_NOT_FOUND;
		}
		*n = 1;
		return TOK_OK;
	}
	lib->registry = p11_kit_modules_load(NULL, 0);
	if (!lib->registry) {
		tok_err_set(err, "cannot load the PKCS#11 modules registered with p11-kit: %s",
			    p11_kit_message() ? p11_kit_message() : _("unknown reason"));
		tok_err_hint(err, "pass --module with the path of the PKCS#11 library");
		return TOK_ERR;
	}
	*n = 0;
	while (lib->registry[*n])
		(*n)++;
	return TOK_OK;
}

/* Initializes the n registered modules, or only the one named module (its
 * failure is then the answer); a broken module must not hide the others. */
static tok_rv init_registered(tok_lib *lib, const char *module, size_t n, tok_err *err)
{
	CK_FUNCTION_LIST *only = NULL;
	CK_RV rv;

	if (module) {
		only = p11_kit_module_for_name(lib->registry, module);
		if (!only) {
			tok_err_set(err, "no PKCS#11 module named '%s' is registered with p11-kit",
				    module);
			tok_err_hint(err, "see 'p11-kit list-modules', or pass the path of the "
					  "module's .so file");
			return TOK_NOT_FOUND;
		}
	}
	for (size_t i = 0; i < n; i++) {
		CK_FUNCTION_LIST *m = lib->registry[i];

		if (only && m != only)
			continue;
		rv = init_module(m, lib->module_args);
		if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			if (only)
				return init_failed(lib, module, rv, err);
			continue;
		}
		lib->used[lib->n_used++] = m;
	}
	return TOK_OK;
}

/* C_Initialize of the loaded modules; those that started go in lib->used
 * (room for n). */
static tok_rv init_modules(tok_lib *lib, const char *module, size_t n, tok_err *err)
{
	CK_RV rv;

	lib->used = calloc(n + 1, sizeof(*lib->used));
	if (!lib->used) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	if (!lib->single)
		return init_registered(lib, module, n, err);
	rv = init_module(lib->single, lib->module_args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return init_failed(lib, module, rv, err);
	lib->used[lib->n_used++] = lib->single;
	return TOK_OK;
}

tok_rv tok_lib_open(const char *module, const char *module_args, tok_lib **out, tok_err *err)
{
	tok_lib *lib = calloc(1, sizeof(*lib));
	size_t n = 0;
	tok_rv ret;

	if (!lib) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	ret = keep_module_args(lib, module, module_args, err);
	if (ret == TOK_OK)
		ret = load_modules(lib, module, &n, err);
	if (ret == TOK_OK)
		ret = init_modules(lib, module, n, err);
	if (ret == TOK_OK) {
		*out = lib;
		lib = NULL;
	}
	tok_lib_close(lib);
	return ret;
}

void tok_lib_close(tok_lib *lib)
{
	if (!lib)
		return;
	for (size_t i = 0; i < lib->n_used; i++)
		p11_kit_module_finalize(lib->used[i]);
	if (lib->registry)
		p11_kit_modules_release(lib->registry);
	if (lib->single)
		p11_kit_module_release(lib->single);
	free(lib->used);
	free(lib->tokens);
	free(lib->module_args);
	free(lib);
}

static void module_label(CK_FUNCTION_LIST *m, char *dst, size_t size)
{
	char *name = p11_kit_module_get_name(m);

	if (!name)
		name = p11_kit_module_get_filename(m);
	snprintf(dst, size, "%s", name ? name : _("(unknown module)"));
	free(name);
}

static void fill_info(struct tok_token *t, CK_FUNCTION_LIST *m)
{
	tok_token_info *i = &t->info;
	CK_FLAGS fl = t->ck.flags;

	tok_padded_copy(i->label, sizeof(i->label), t->ck.label, sizeof(t->ck.label));
	tok_padded_copy(i->manufacturer, sizeof(i->manufacturer), t->ck.manufacturerID,
			sizeof(t->ck.manufacturerID));
	tok_padded_copy(i->model, sizeof(i->model), t->ck.model, sizeof(t->ck.model));
	tok_padded_copy(i->serial, sizeof(i->serial), t->ck.serialNumber,
			sizeof(t->ck.serialNumber));
	module_label(m, i->module, sizeof(i->module));
	i->initialized = fl & CKF_TOKEN_INITIALIZED;
	i->login_required = fl & CKF_LOGIN_REQUIRED;
	i->write_protected = fl & CKF_WRITE_PROTECTED;
	i->protected_path = fl & CKF_PROTECTED_AUTHENTICATION_PATH;
	i->pin_locked = fl & CKF_USER_PIN_LOCKED;
	i->pin_final_try = fl & CKF_USER_PIN_FINAL_TRY;
	i->pin_count_low = fl & CKF_USER_PIN_COUNT_LOW;
}

/* The slots with a token. The count may change between the length query
 * and the list (a token inserted in between): ask again, a few times. */
static tok_rv slot_list(CK_FUNCTION_LIST *m, CK_SLOT_ID **out, CK_ULONG *n, tok_err *err)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG count = 0;
	CK_RV rv = CKR_BUFFER_TOO_SMALL;

	for (int tries = 0; tries < 5 && rv == CKR_BUFFER_TOO_SMALL; tries++) {
		CK_SLOT_ID *grown;

		rv = m->C_GetSlotList(CK_TRUE, NULL, &count);
		if (rv != CKR_OK)
			break;
		grown = realloc(slots, (count + 1) * sizeof(*slots));
		if (!grown) {
			free(slots);
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
		slots = grown;
		rv = count ? m->C_GetSlotList(CK_TRUE, slots, &count) : CKR_OK;
	}
	if (rv != CKR_OK) {
		free(slots);
		return tok_err_ckr(err, "C_GetSlotList", rv);
	}
	*out = slots;
	*n = count;
	return TOK_OK;
}

/* Appends the tokens present in one module's slots. */
static tok_rv list_module(tok_lib *lib, CK_FUNCTION_LIST *m, tok_err *err)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG count = 0;
	tok_rv ret;
	CK_RV rv;

	ret = slot_list(m, &slots, &count, err);
	if (ret != TOK_OK)
		return ret;
	ret = TOK_ERR;
	for (CK_ULONG i = 0; i < count; i++) {
		struct tok_token *grown;
		struct tok_token *t;

		grown = realloc(lib->tokens, (lib->n_tokens + 1) * sizeof(*grown));
		if (!grown) {
			tok_err_set(err, "out of memory");
			goto out;
		}
		lib->tokens = grown;
		t = &lib->tokens[lib->n_tokens];
		memset(t, 0, sizeof(*t));
		t->lib = lib;
		t->f = m;
		t->slot = slots[i];
		rv = m->C_GetTokenInfo(slots[i], &t->ck);
		if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED)
			continue;
		if (rv != CKR_OK) {
			ret = tok_err_ckr(err, "C_GetTokenInfo", rv);
			goto out;
		}
		tok_token_info_clean(&t->ck);
		fill_info(t, m);
		lib->n_tokens++;
	}
	ret = TOK_OK;
out:
	free(slots);
	return ret;
}

static tok_rv ensure_listed(tok_lib *lib, tok_err *err)
{
	tok_rv r;

	if (lib->listed)
		return TOK_OK;
	for (size_t i = 0; i < lib->n_used; i++) {
		r = list_module(lib, lib->used[i], err);
		/* One failing module in the registry must not hide the others. */
		if (r != TOK_OK && (lib->single || lib->n_used == 1))
			return r;
	}
	lib->listed = true;
	return TOK_OK;
}

static bool usable(const struct tok_token *t)
{
	return t->info.initialized && t->info.login_required;
}

/* Appends "'label' (module, serial S)" of every token to a buffer. */
static void describe_tokens(const tok_lib *lib, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < lib->n_tokens && used < size; i++) {
		const tok_token_info *ti = &lib->tokens[i].info;
		int w = snprintf(buf + used, size - used, "%s'%s' (%s, serial %s%s)", i ? ", " : "",
				 ti->label, ti->module, ti->serial,
				 ti->initialized ? "" : _(", not initialized"));

		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (lib->n_tokens == 0)
		snprintf(buf, size, "none");
}

static tok_rv match_uri(tok_lib *lib, const char *spec, bool *hit, tok_err *err)
{
	P11KitUri *uri = p11_kit_uri_new();
	tok_rv ret = TOK_ERR;
	int r;

	if (!uri) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	r = p11_kit_uri_parse(spec, P11_KIT_URI_FOR_ANY, uri);
	if (r != P11_KIT_URI_OK) {
		tok_err_set(err, "the token URI is not valid: %s", p11_kit_uri_message(r));
		tok_err_hint(err,
			     "write it as pkcs11:token=LABEL (RFC 7512), or give just the label");
		goto out;
	}
	if (p11_kit_uri_get_pin_value(uri) || p11_kit_uri_get_pin_source(uri)) {
		tok_err_set(err, "the token URI contains a PIN; vzp11 does not take PINs from URIs "
				 "because command lines are visible to every user");
		tok_err_hint(err, "remove pin-value/pin-source from the URI and use --pin-source");
		goto out;
	}
	for (size_t i = 0; i < lib->n_tokens; i++) {
		CK_INFO mi;

		hit[i] = p11_kit_uri_match_token_info(uri, &lib->tokens[i].ck) == 1;
		if (hit[i] && lib->tokens[i].f->C_GetInfo(&mi) == CKR_OK) {
			tok_module_info_clean(&mi);
			hit[i] = p11_kit_uri_match_module_info(uri, &mi) == 1;
		}
	}
	ret = TOK_OK;
out:
	p11_kit_uri_free(uri);
	return ret;
}

tok_rv tok_lib_select(tok_lib *lib, const char *spec, tok_token **out, tok_err *err)
{
	char names[384];
	bool *hit = NULL;
	size_t found = 0, idx = 0;
	tok_rv ret;

	ret = ensure_listed(lib, err);
	if (ret != TOK_OK)
		return ret;
	hit = calloc(lib->n_tokens + 1, sizeof(*hit));
	if (!hit) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	if (spec && strncmp(spec, "pkcs11:", 7) == 0) {
		ret = match_uri(lib, spec, hit, err);
		if (ret != TOK_OK)
			goto out;
	} else {
		for (size_t i = 0; i < lib->n_tokens; i++)
			hit[i] = spec ? strcmp(lib->tokens[i].info.label, spec) == 0
				      : usable(&lib->tokens[i]);
	}
	for (size_t i = 0; i < lib->n_tokens; i++) {
		if (hit[i]) {
			found++;
			idx = i;
		}
	}
	describe_tokens(lib, names, sizeof(names));
	if (found == 1) {
		*out = &lib->tokens[idx];
		ret = TOK_OK;
	} else if (found == 0) {
		ret = TOK_NOT_FOUND;
		if (spec)
			tok_err_set(err, "no token matches '%s'; tokens seen: %s", spec, names);
		else
			tok_err_set(err, "no initialized token found; tokens seen: %s", names);
		tok_err_hint(err, "pass --token with a label from that list, or --module with the "
				  "path of your HSM's PKCS#11 library");
	} else {
		ret = TOK_AMBIGUOUS;
		tok_err_set(err, "%zu tokens match%s%s%s; tokens seen: %s", found, spec ? " '" : "",
			    spec ? spec : "", spec ? "'" : "", names);
		tok_err_hint(err, "choose one with --token pkcs11:token=LABEL;serial=SERIAL");
	}
out:
	free(hit);
	return ret;
}

const tok_token_info *tok_token_info_of(const tok_token *t)
{
	return &t->info;
}

tok_rv tok_token_module_path(const tok_token *t, char **out, tok_err *err)
{
	char *path = p11_kit_module_get_filename(t->f);

	if (!path) {
		tok_err_set(
			err,
			"the PKCS#11 module of token '%s' (%s) has no file on this machine (a "
			"p11-kit remote module?); pkcs11-provider, which signs for TLS, can only "
			"load a module file",
			t->info.label, t->info.module);
		tok_err_hint(err, "pass --module with the path of the module's .so file");
		return TOK_NOT_FOUND;
	}
	*out = path;
	return TOK_OK;
}

char *tok_token_module_args(const tok_token *t)
{
	if (t->lib && t->lib->module_args)
		return strdup(t->lib->module_args);
	return p11_kit_config_option(t->f, "x-init-reserved");
}
