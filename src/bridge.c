/* Placeholder for the upstream bridge: every hook is a no-op until [upstream] exists. */
#include "bridge.h"

int bridge_start(void)
{
    return 0;
}

void bridge_stop(void)
{
}

void bridge_interest(enum pubsub_kind kind, const char *name, size_t len, int added)
{
}

void bridge_forward(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                    size_t plen)
{
}

void bridge_info(struct evbuffer *out)
{
}
