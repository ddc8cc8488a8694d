/* Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH. Commands sent after MULTI are
 * checked, copied and queued; EXEC runs them back to back. The loop is single-threaded, so
 * nothing (no other client's command, no message) comes between them, which is all Redis
 * promises too. WATCH is accepted and changes nothing: evbrokerd keeps no keys that could
 * change under a transaction. */
#ifndef EVB_MULTI_H
#define EVB_MULTI_H

#include <stddef.h>

struct client;
struct command;

/* Copies the command in c->argv into c's transaction and replies +QUEUED. After an error in
 * the transaction nothing more is kept (EXEC will discard it anyway). The queue may hold
 * [limits] client_query_buffer_limit bytes, as a request may: a client past that is closed.
 * So may the replies EXEC queues (see cmd_exec). */
void multi_queue(struct client *c, const struct command *cmd);

/* A command was refused while c is in a transaction: EXEC will discard it. */
void multi_flag_error(struct client *c);

/* Ends c's transaction, if any, without running it (DISCARD, RESET, EXEC, a refused EXEC, and
 * when the client is freed). */
void multi_discard(struct client *c);

/* Commands queued (-1 outside a transaction) and the bytes they hold, for CLIENT LIST. */
long multi_count(const struct client *c);
size_t multi_memory(const struct client *c);

#endif
