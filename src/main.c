/* evbrokerd entry point: command line, configuration, start, exit status. Nothing else
 * lives here, so the tests link everything else as libevbroker.a. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "bridge.h"
#include "command.h"
#include "config.h"
#include "dict.h"
#include "log.h"
#include "pubsub.h"
#include "server.h"
#include "util.h"

/* Prints usage and every configuration key with its default. */
static void usage(FILE *f)
{
    fprintf(f, "Usage: evbrokerd [-c FILE] [--port N] [--bind ADDR] [--test-config]\n"
               "                 [--help] [--version]\n\n"
               "  -c, --config FILE  read the INI configuration FILE (default: built-in defaults)\n"
               "  -p, --port N       TCP port (overrides [server] port)\n"
               "  -b, --bind ADDR    listen address(es), space separated (overrides [server] "
               "bind)\n"
               "  -t, --test-config  check the configuration, print every problem, and exit\n"
               "  -h, --help         this text\n"
               "  -v, --version      print the version\n\n"
               "Configuration keys (section, key, default):\n");
    for (size_t i = 0; i < config_key_count(); i++) {
        const struct config_key_info *k = config_key(i);
        fprintf(f, "  [%s] %s = %s%s\n      %s\n", k->section, k->name, k->default_value,
                k->reloadable ? "  (reloadable)" : "", k->help);
    }
    fprintf(f, "  [user.NAME] password, enabled = yes, channels, admin = no  (reloadable)\n"
               "      a user clients log in as with AUTH NAME PASSWORD; see the shipped file\n"
               "\nLists (bind, channels, ciphers, ciphersuites) go on with \"key += more\".\n");
}

/* Logs the settings an operator checks first, in one line. */
static void log_config_summary(const struct config *cfg)
{
    char bind[256] = "";
    size_t n = 0;

    for (int i = 0; i < cfg->nbind && n < sizeof(bind); i++)
        n += (size_t)snprintf(bind + n, sizeof(bind) - n, "%s%s", i ? " " : "", cfg->bind[i]);
    log_notice("Configuration: port=%d bind=\"%s\" unixsocket=%s maxclients=%d timeout=%d "
               "pubsub_output_limit=%lld/%lld/%ds client_query_buffer_limit=%lld "
               "proto_max_bulk_len=%lld requirepass=%s upstream=%s metrics=%s tls_port=%d",
               cfg->port, bind, cfg->unixsocket ? cfg->unixsocket : "none", cfg->maxclients,
               cfg->timeout, cfg->pubsub_hard_limit, cfg->pubsub_soft_limit,
               cfg->pubsub_soft_seconds, cfg->client_query_buffer_limit, cfg->proto_max_bulk_len,
               cfg->requirepass ? "set" : "none",
               cfg->upstream_host         ? cfg->upstream_host
               : cfg->upstream_unixsocket ? cfg->upstream_unixsocket
                                          : "none",
               cfg->metrics_listen ? cfg->metrics_listen : "off", cfg->tls_port);
}

/* config_load callback for startup: each problem on its own line on stderr. */
static void report_problem(const char *problem, void *arg)
{
    fprintf(stderr, "evbrokerd: %s\n", problem);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"test-config", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *port = NULL, *bind = NULL;
    int test_only = 0, opt;
    struct config cfg;
    uint8_t seed[16];

    while ((opt = getopt_long(argc, argv, "c:p:b:thv", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'b':
            bind = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            printf("evbrokerd %s (Redis protocol %s)\n", EVB_VERSION, EVB_REDIS_COMPAT_VERSION);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "evbrokerd: unexpected argument '%s' (use -c FILE)\n", argv[optind]);
        return EX_USAGE;
    }

    /* As Redis: INFO's config_file and the reload name the file whatever the working directory.
     * Symbolic links stay as given (a Kubernetes ConfigMap swaps the directory they point at). */
    char abspath[PATH_MAX], cwd[PATH_MAX];
    if (path && path[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL &&
        (size_t)snprintf(abspath, sizeof(abspath), "%s/%s", cwd, path) < sizeof(abspath))
        path = abspath;
    config_init(&cfg);
    if (path && config_load(&cfg, path, report_problem, NULL) != 0) {
        config_free(&cfg);
        return EX_CONFIG;
    }
    server.cli_port = port;
    server.cli_bind = bind;
    if (server_apply_cli(&cfg) < 0) {
        config_free(&cfg);
        return EX_USAGE;
    }
    if (test_only) {
        printf("evbrokerd: configuration %s is valid\n", path ? path : "(defaults)");
        config_free(&cfg);
        return 0;
    }
    if (log_open(cfg.log_level, cfg.log_target) < 0) {
        fprintf(stderr, "evbrokerd: cannot open log target %s: %s\n", cfg.log_target,
                log_open_error());
        config_free(&cfg);
        return EX_CANTCREAT;
    }

    util_random_bytes(seed, sizeof(seed));
    dict_set_seed(seed);
    pubsub_init();
    command_init();
    log_notice("evbrokerd %s starting (pid %d, config %s)", EVB_VERSION, (int)getpid(),
               path ? path : "built-in defaults");
    log_config_summary(&cfg);
    if (server_init(&cfg, path) < 0 || bridge_start() < 0) {
        bridge_stop();
        server_cleanup();
        pubsub_cleanup();
        return EX_UNAVAILABLE;
    }
    int status = server_run();
    bridge_stop();
    server_cleanup();
    pubsub_cleanup();
    log_close();
    return status;
}
