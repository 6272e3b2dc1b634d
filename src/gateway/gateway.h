/* gateway.h - `vzp11 gateway`, the local proxy that lets practice software
 * reach VECOZO through the token's key, and `vzp11 clients`, the client
 * certificates that may use it. The rest of the folder is its own. */
#ifndef VZP11_GATEWAY_GATEWAY_H
#define VZP11_GATEWAY_GATEWAY_H

#include "cli/cli.h"

extern const vz_command vz_cmd_gateway;
extern const vz_command vz_cmd_clients;

#endif
