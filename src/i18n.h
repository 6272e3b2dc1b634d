/* i18n.h - translated messages (gettext, domain "vzp11"). vz_err_set,
 * vz_err_hint, vz_usage and vz_note translate their format themselves; the
 * rest marks its strings with _() (or N_() where a table holds them). JSON
 * keys, CSV headers and VECOZO's own terms stay as they are. */
#ifndef VZP11_I18N_H
#define VZP11_I18N_H

#include <libintl.h>

#define _(s)  gettext(s)
#define N_(s) s

#endif
