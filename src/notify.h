/* systemd readiness notification over $NOTIFY_SOCKET (the sd_notify datagram protocol),
 * without linking libsystemd. Without $NOTIFY_SOCKET every call is a no-op. */
#ifndef EVB_NOTIFY_H
#define EVB_NOTIFY_H

/* Sends state lines such as "READY=1\nSTATUS=...". Returns 0, or -1 (logged at debug). */
int notify_send(const char *state);

#endif
