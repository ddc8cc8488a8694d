/* MONITOR: clients that are sent a line for every command the server runs, in Redis's
 * format, after the command ran. */
#ifndef EVB_MONITOR_H
#define EVB_MONITOR_H

#include <stddef.h>

struct client;
struct command;

/* Number of monitoring clients; the dispatcher feeds only when it is not 0. */
extern size_t monitor_count;

/* Makes c a monitor (CLIENT_F_MONITOR), or takes it off the list (RESET, and when freed;
 * a monitor marked closing stays listed until then but is sent nothing). */
void monitor_add(struct client *c);
void monitor_remove(struct client *c);

/* Sends every monitor the line for cmd as c just ran it, passwords redacted. */
void monitor_feed(const struct client *c, const struct command *cmd);

/* Frees the list at exit, once no client is left. */
void monitor_cleanup(void);

#endif
