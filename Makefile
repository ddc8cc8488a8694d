# evbrokerd build. `make` builds src/evbrokerd and src/libevbroker.a.
# O=DIR puts every output under DIR (used for the sanitizer build); SAN=1 adds ASan+UBSan.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
O ?=
B := $(if $(O),$(O)/,)

PKGS := libevent libevent_openssl hiredis inih libssl libcrypto
TEST_PKGS := check

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wimplicit-fallthrough -Wno-unused-parameter -Wno-missing-field-initializers
OPT ?= -O2 -g
CFLAGS ?=
CFLAGS += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(shell pkg-config --cflags $(PKGS))
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
# jemalloc, as Redis uses: fan-out allocates and frees many small output chunks, which
# glibc keeps trimming and faulting back in. Not with ASan, which brings its own allocator.
ALLOC_LIBS := $(shell pkg-config --libs jemalloc)
CFLAGS += -DEVB_JEMALLOC
endif
LIBS := $(shell pkg-config --libs $(PKGS)) $(ALLOC_LIBS) -lm
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(patsubst %.c,$(B)%.o,$(LIB_SRCS))
LIB := $(B)src/libevbroker.a
BIN := $(B)src/evbrokerd

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst %.c,$(B)%,$(UNIT_SRCS))
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(patsubst %.c,$(B)%,$(ITEST_SRCS))

.PHONY: all clean check test unit integration setup run san-check format format-check \
        install uninstall bench
all: $(BIN) $(LIB)

$(B)src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(B)src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)tests/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIB) $(TEST_LIBS) $(LIBS)

$(B)tests/integration/%: tests/integration/%.c tests/integration/itest.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIB) $(TEST_LIBS) $(LIBS)

-include $(LIB_OBJS:.o=.d) $(B)src/main.d

# The benchmark load generator links libevent only, not the broker library (explicit rule, so
# the tests/unit and tests/integration pattern rules never apply to it).
BENCH_BIN := $(B)tests/bench/loadgen
$(BENCH_BIN): tests/bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $< $(shell pkg-config --cflags --libs libevent)

# Runs every issue-5 scenario against evbrokerd and redis-server (BENCH_REPS, BENCH_QUICK=1,
# BENCH_ONLY=ids); results under bench-results/.
bench: $(BIN) $(BENCH_BIN)
	EVBROKERD=$(BIN) LOADGEN=$(BENCH_BIN) scripts/bench.sh

# Installs missing Debian packages; a quick no-op when everything is present.
setup:
	@scripts/setup.sh

# Builds and runs the daemon in the foreground on its default configuration.
run: setup
	$(MAKE) all
	$(BIN) -c conf/evbrokerd.conf

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=yes $$t; done

integration: $(BIN) $(ITEST_BINS) $(BENCH_BIN)
	@EVBROKERD=$(BIN) ITEST_BIN_DIR=$(B)tests/integration LOADGEN=$(BENCH_BIN) \
		scripts/run-integration.sh

test: unit integration

# The full test command: setup, -Werror build, unit + integration, then the same under ASan/UBSan.
check: setup
	$(MAKE) WERROR=1 test
	$(MAKE) WERROR=1 O=build-san SAN=1 OPT="-O1 -g" test
	$(MAKE) WERROR=1 valgrind
	$(MAKE) fuzz-smoke
	@scripts/check-format.sh

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/unit/*.h tests/integration/*.c tests/integration/*.h tests/fuzz/*.c tests/bench/*.c

format-check:
	@scripts/check-format.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/evbrokerd $(DESTDIR)/lib/systemd/system \
	    $(DESTDIR)$(PREFIX)/share/doc/evbrokerd
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/evbrokerd
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/evbrokerd/README.md
	install -m 755 scripts/evbrokerd-top $(DESTDIR)$(PREFIX)/bin/evbrokerd-top
	@if [ -e $(DESTDIR)/etc/evbrokerd/evbrokerd.conf ]; then \
	    echo "keeping existing $(DESTDIR)/etc/evbrokerd/evbrokerd.conf"; \
	else install -m 644 conf/evbrokerd.conf $(DESTDIR)/etc/evbrokerd/evbrokerd.conf; fi
	sed 's#/usr/local/#$(PREFIX)/#' evbrokerd.service > $(DESTDIR)/lib/systemd/system/evbrokerd.service
	chmod 644 $(DESTDIR)/lib/systemd/system/evbrokerd.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/evbrokerd $(DESTDIR)$(PREFIX)/bin/evbrokerd-top \
	    $(DESTDIR)/lib/systemd/system/evbrokerd.service \
	    $(DESTDIR)$(PREFIX)/share/doc/evbrokerd/README.md
	rmdir $(DESTDIR)$(PREFIX)/share/doc/evbrokerd 2>/dev/null || true
	@echo "left $(DESTDIR)/etc/evbrokerd/evbrokerd.conf in place (remove it by hand if wanted)"

clean:
	rm -f src/*.o src/*.d $(LIB) $(BIN) $(UNIT_BINS) $(ITEST_BINS)
	rm -rf build-san build-fuzz build-jem

# --- fuzzing (clang + libFuzzer) -----------------------------------------------------------
# The library objects are compiled again with clang into build-fuzz/ with coverage and
# ASan+UBSan; each tests/fuzz/fuzz_*.c harness links them. `make fuzz` runs every harness for
# FUZZ_SECONDS on a scratch corpus seeded from tests/fuzz/corpus (the seeds stay untouched);
# crashes are written to build-fuzz/crash-*. `make fuzz-smoke` is the short run CI uses.
.PHONY: fuzz fuzz-build fuzz-smoke valgrind
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_DIR := build-fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(shell pkg-config --cflags $(PKGS)) $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(patsubst src/%.c,$(FUZZ_DIR)/src/%.o,$(LIB_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRCS))
# No jemalloc here: ASan brings its own allocator.
FUZZ_LIBS := $(shell pkg-config --libs $(PKGS)) -lm
# Each harness: max input length, and libFuzzer options.
FUZZ_OPTS := -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

$(FUZZ_DIR)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_LIB_OBJS) $(FUZZ_LIBS)

-include $(FUZZ_LIB_OBJS:.o=.d)

fuzz-build: $(FUZZ_BINS)

# Runs the harnesses one after the other, FUZZ_SECONDS each.
fuzz: fuzz-build
	@set -e; for h in $(FUZZ_BINS); do \
	    name=$$(basename $$h); mkdir -p $(FUZZ_DIR)/corpus-$$name; \
	    echo "== $$name for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/$$name.log)"; \
	    rc=0; $$h $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=$(FUZZ_DIR)/crash-$$name- $(FUZZ_DIR)/corpus-$$name tests/fuzz/corpus \
	        </dev/null >$(FUZZ_DIR)/$$name.log 2>&1 || rc=$$?; \
	    grep -E '^#[0-9]+ +DONE|^stat::|SUMMARY|^fuzz_|Test unit written' $(FUZZ_DIR)/$$name.log || true; \
	    if [ $$rc -ne 0 ]; then tail -n 60 $(FUZZ_DIR)/$$name.log; exit $$rc; fi; \
	done

# The short run for `make check`: every harness at once for FUZZ_SMOKE_SECONDS.
fuzz-smoke: fuzz-build
	@pids=""; for h in $(FUZZ_BINS); do \
	    name=$$(basename $$h); mkdir -p $(FUZZ_DIR)/corpus-$$name; \
	    timeout -k 10 $$(( $(FUZZ_SMOKE_SECONDS) + 60 )) $$h $(FUZZ_OPTS) \
	        -max_total_time=$(FUZZ_SMOKE_SECONDS) -artifact_prefix=$(FUZZ_DIR)/crash-$$name- \
	        $(FUZZ_DIR)/corpus-$$name tests/fuzz/corpus </dev/null >$(FUZZ_DIR)/$$name.log 2>&1 & \
	    pids="$$pids $$!"; \
	done; rc=0; for p in $$pids; do wait $$p || rc=1; done; \
	for h in $(FUZZ_BINS); do name=$$(basename $$h); \
	    echo "$$name: $$(grep -E 'stat::number_of_executed_units' $(FUZZ_DIR)/$$name.log)"; done; \
	if [ $$rc -ne 0 ]; then tail -n 40 $(FUZZ_DIR)/*.log; echo "fuzz-smoke: FAILED"; fi; exit $$rc

# Every unit suite under valgrind, in-process (CK_FORK=no) so leaks and errors are seen.
VALGRIND ?= valgrind --leak-check=full --error-exitcode=1 -q
valgrind: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; CK_FORK=no $(VALGRIND) $$t; done
