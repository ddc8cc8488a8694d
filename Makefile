# evbrokerd build. `make` builds src/evbrokerd and src/libevbroker.a.
# O=DIR puts every output under DIR (used for the sanitizer build); SAN=1 adds ASan+UBSan.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
O ?=
B := $(if $(O),$(O)/,)

PKGS := libevent hiredis inih
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
endif
LIBS := $(shell pkg-config --libs $(PKGS)) -lm
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

$(B)tests/unit/%: tests/unit/%.c tests/unit/unit.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIB) $(TEST_LIBS) $(LIBS)

$(B)tests/integration/%: tests/integration/%.c tests/integration/itest.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIB) $(TEST_LIBS) $(LIBS)

-include $(LIB_OBJS:.o=.d) $(B)src/main.d

# Installs missing Debian packages; a quick no-op when everything is present.
setup:
	@scripts/setup.sh

# Builds and runs the daemon in the foreground on its default configuration.
run: setup
	$(MAKE) all
	$(BIN) -c conf/evbrokerd.conf

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=yes $$t; done

integration: $(BIN) $(ITEST_BINS)
	@EVBROKERD=$(BIN) ITEST_BIN_DIR=$(B)tests/integration scripts/run-integration.sh

test: unit integration

# The full test command: setup, -Werror build, unit + integration, then the same under ASan/UBSan.
check: setup
	$(MAKE) WERROR=1 test
	$(MAKE) WERROR=1 O=build-san SAN=1 OPT="-O1 -g" test
	@scripts/check-format.sh

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/unit/*.h tests/integration/*.c tests/integration/*.h

format-check:
	@scripts/check-format.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/evbrokerd $(DESTDIR)/lib/systemd/system
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/evbrokerd
	@if [ -e $(DESTDIR)/etc/evbrokerd/evbrokerd.conf ]; then \
	    echo "keeping existing $(DESTDIR)/etc/evbrokerd/evbrokerd.conf"; \
	else install -m 644 conf/evbrokerd.conf $(DESTDIR)/etc/evbrokerd/evbrokerd.conf; fi
	sed 's#/usr/local/bin/evbrokerd#$(PREFIX)/bin/evbrokerd#' evbrokerd.service > $(DESTDIR)/lib/systemd/system/evbrokerd.service
	chmod 644 $(DESTDIR)/lib/systemd/system/evbrokerd.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/evbrokerd $(DESTDIR)/lib/systemd/system/evbrokerd.service
	@echo "left $(DESTDIR)/etc/evbrokerd/evbrokerd.conf in place (remove it by hand if wanted)"

clean:
	rm -f src/*.o src/*.d $(LIB) $(BIN) $(UNIT_BINS) $(ITEST_BINS)
	rm -rf build-san
