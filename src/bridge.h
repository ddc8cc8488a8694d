/* The bridge to an upstream Redis: local publishes go up, upstream messages come down,
 * upstream subscriptions follow local interest. The only module that includes hiredis.
 * With no [upstream] configured every function is a cheap no-op. */
#ifndef EVB_BRIDGE_H
#define EVB_BRIDGE_H

#include <stddef.h>

#include "client.h"

struct evbuffer;

/* Starts the link when the configuration asks for one. Returns 0, or -1 after logging. */
int bridge_start(void);
/* Closes the link and frees everything. */
void bridge_stop(void);

/* A topic gained its first local subscriber (added = 1) or lost its last (added = 0). */
void bridge_interest(enum pubsub_kind kind, const char *name, size_t len, int added);

/* A local PUBLISH / SPUBLISH was delivered locally; forward it upstream. */
void bridge_forward(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                    size_t plen);

/* Appends the INFO "# Bridge" section (nothing when no upstream is configured). */
void bridge_info(struct evbuffer *out);

#endif
