/* state.c - a request's life (vz_gw_state, gw.h): the one table of the
 * changes it may make, and the one function that makes them. */
#include <stdio.h>

#include "gw.h"

static const char *const state_names[] = {
	[VZ_GW_RECEIVED] = "received", [VZ_GW_ADMITTED] = "admitted",
	[VZ_GW_UPSTREAM] = "upstream", [VZ_GW_ANSWERING] = "answering",
	[VZ_GW_REFUSED] = "refused",   [VZ_GW_LOCAL] = "local",
	[VZ_GW_FAILED] = "failed",     [VZ_GW_DONE] = "done",
	[VZ_GW_ABORTED] = "aborted",
};

/* The one table of the changes a request's state may make (gw.h). */
static bool allowed(vz_gw_state from, vz_gw_state to)
{
	switch (from) {
	case VZ_GW_RECEIVED:
		return to == VZ_GW_ADMITTED || to == VZ_GW_REFUSED || to == VZ_GW_LOCAL ||
		       to == VZ_GW_ABORTED;
	case VZ_GW_ADMITTED:
		return to == VZ_GW_UPSTREAM || to == VZ_GW_REFUSED || to == VZ_GW_ABORTED;
	case VZ_GW_UPSTREAM:
		return to == VZ_GW_ANSWERING || to == VZ_GW_FAILED || to == VZ_GW_REFUSED ||
		       to == VZ_GW_ABORTED;
	case VZ_GW_ANSWERING:
		return to == VZ_GW_DONE || to == VZ_GW_FAILED || to == VZ_GW_ABORTED;
	case VZ_GW_REFUSED:
	case VZ_GW_LOCAL:
	case VZ_GW_FAILED:
		return to == VZ_GW_DONE || to == VZ_GW_ABORTED;
	case VZ_GW_DONE:
	case VZ_GW_ABORTED:
		return false;
	}
	return false;
}

const char *vz_gw_state_name(vz_gw_state s)
{
	return s <= VZ_GW_ABORTED ? state_names[s] : "?";
}

bool vz_gw_xfer_to(vz_gw_xfer *x, vz_gw_state to)
{
	if (!allowed(x->state, to)) {
		char line[300];

		snprintf(line, sizeof(line), "bug: a request may not go from %s to %s (%s %s)",
			 vz_gw_state_name(x->state), vz_gw_state_name(to), x->method, x->path);
		if (x->gw->cfg->log)
			x->gw->cfg->log(x->gw->cfg->log_ctx, line);
		return false;
	}
	x->state = to;
	return true;
}
