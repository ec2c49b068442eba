# azbatch: build, test and install. Variable names follow LuaRocks so a
# rockspec can pass them through; every one can be overridden.

LUA          ?= lua5.4
LUAC         ?= luac5.4
LUA_VERSION  ?= 5.4
PKG_CONFIG   ?= pkg-config
LUA_INCDIR   ?= $(shell $(PKG_CONFIG) --variable=includedir lua$(LUA_VERSION) 2>/dev/null)/lua$(LUA_VERSION)
CC           ?= cc
CFLAGS       ?= -O2 -g
LIBFLAG      ?= -shared
PREFIX       ?= /usr/local
INST_PREFIX  ?= $(PREFIX)
INST_LIBDIR  ?= $(INST_PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR  ?= $(INST_PREFIX)/share/lua/$(LUA_VERSION)
INST_BINDIR  ?= $(INST_PREFIX)/bin
DESTDIR      ?=
COMPLETIONDIR ?= $(INST_PREFIX)/share/bash-completion/completions
BUILD        ?= build

WARN     = -std=c99 -Wall -Wextra -Wshadow -Wmissing-prototypes \
           -Wstrict-prototypes -Wwrite-strings
# Never link liblua into the module: the host's Lua provides the symbols.
DEPFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl libcrypto 2>/dev/null)
DEPLIBS  = $(shell $(PKG_CONFIG) --libs libcurl libcrypto 2>/dev/null)
ALLCFLAGS = $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L \
            -I$(LUA_INCDIR) $(DEPFLAGS) -MMD -MP

SRCS    = $(wildcard ext/*.c)
OBJS    = $(SRCS:ext/%.c=$(BUILD)/obj/%.o)
MODULE  = $(BUILD)/azbatch/core.so
EMBED   = $(BUILD)/embed_test
HOST    = $(BUILD)/azbatch-host
HOST_SRCS = scripts/examples/host/azbatch_host.c scripts/examples/host/host_event.c
# The modules precompiled (luac, line info kept): loading them costs half the
# instructions of parsing the sources, most of a CLI call's start-up. The
# launcher runs them in a checkout, 'make install' installs them.
LUA_SRCS  = $(wildcard lua/azbatch/*.lua)
LUA_BC    = $(LUA_SRCS:lua/%=$(BUILD)/lua/%)

# The native CLI launcher: azbatch.cli with the core linked in (scripts/azbatch.c).
CLI_BIN  = $(BUILD)/bin/azbatch
CLI_SRC  = scripts/azbatch.c

# The Debian packages everything here needs; 'deps' installs the missing ones.
DEB_PKGS = lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev \
           lua-busted lua-check luarocks python3 pkg-config gcc make curl

.PHONY: all deps host test check lint unit asan valgrind fuzz bench demo install clean interop bench-peers soak profile

all: $(MODULE) $(LUA_BC) $(CLI_BIN)

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BUILD)/lua/%.lua: lua/%.lua
	@mkdir -p $(dir $@)
	$(LUAC) -o $@ $<

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(OBJS) $(DEPLIBS) $(LDFLAGS)

$(BUILD)/obj/%.o: ext/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

# Host applications link liblua and the core's objects, and register the
# core with luaL_requiref.
HOSTLIBS = $(OBJS) $(shell $(PKG_CONFIG) --libs lua$(LUA_VERSION)) $(DEPLIBS) -lm -ldl $(LDFLAGS)

$(BUILD)/embed_test: tests/c/embed_test.c $(OBJS)
	$(CC) $(CFLAGS) $(WARN) -I$(LUA_INCDIR) -o $@ $< $(HOSTLIBS)

# It runs the modules precompiled into this tree's build/lua; make install
# builds the one it installs against INST_LUADIR.
CLI_CC = $(CC) $(CFLAGS) $(WARN) -D_POSIX_C_SOURCE=200809L -I$(LUA_INCDIR)

$(CLI_BIN): $(CLI_SRC) $(OBJS)
	@mkdir -p $(dir $@)
	$(CLI_CC) -DAZBATCH_LUA_DIR='"$(abspath $(BUILD))/lua"' -o $@ $< $(HOSTLIBS)

# The example host (docs/embedding.md); it finds the Lua layer in this tree.
host: $(HOST)

$(HOST): $(HOST_SRCS) scripts/examples/host/host_event.h $(OBJS)
	$(CC) $(CFLAGS) $(WARN) -D_POSIX_C_SOURCE=200809L -I$(LUA_INCDIR) -DHOST_LUA_DIR='"$(CURDIR)/lua"' \
	  -o $@ $(HOST_SRCS) $(HOSTLIBS)

lint:
	luacheck -q lua scripts/azbatch scripts/examples tests

unit: all $(HOST)
	busted

# Everything: lint, specs, emulator tests, the embedding test and a sanitizer pass.
test: deps
	@$(MAKE) --no-print-directory all $(EMBED) $(HOST)
	@LUA=$(LUA) BUILD=$(BUILD) sh tests/run.sh

check: test

asan: deps
	@sh tests/asan.sh

# The whole suite under valgrind memcheck (slow: about ten minutes).
valgrind:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) valgrind"
	@sh tests/valgrind.sh

FUZZ_SECONDS ?= 60
fuzz: deps
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

# About ten minutes of 200 pools at once against the emulator under faults
# and outages; checks outcomes, leaks, memory and the request rate; the
# summary goes to build/soak.txt. Not part of 'test'.
SOAK_SECONDS ?= 600
soak: deps all
	@SOAK_SECONDS=$(SOAK_SECONDS) LUA=$(LUA) sh tests/soak/run.sh

bench: deps all
	@sh tests/bench/run.sh

# Instructions per signed GET under callgrind, against the C libcurl loop,
# with the top functions (tests/bench/profile.sh; needs valgrind).
profile: deps all
	@sh tests/bench/profile.sh

# azbatch beside az, the Node SDK and the Python SDK, against one emulator;
# installs them on request (docs/benchmarks.md). Not part of 'test'.
bench-peers: deps all
	@python3 tests/bench/peers/run.py

demo: deps all
	@sh scripts/demo.sh

install: all
	install -d $(DESTDIR)$(INST_LIBDIR)/azbatch $(DESTDIR)$(INST_LUADIR)/azbatch $(DESTDIR)$(INST_BINDIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(INST_LIBDIR)/azbatch/core.so
	install -m 0644 $(LUA_BC) $(DESTDIR)$(INST_LUADIR)/azbatch/
	$(CLI_CC) -DAZBATCH_LUA_DIR='"$(INST_LUADIR)"' -o $(BUILD)/azbatch.installed $(CLI_SRC) $(HOSTLIBS)
	install -m 0755 $(BUILD)/azbatch.installed $(DESTDIR)$(INST_BINDIR)/azbatch
	install -d $(DESTDIR)$(COMPLETIONDIR)
	install -m 0644 scripts/azbatch-completion.bash $(DESTDIR)$(COMPLETIONDIR)/azbatch

clean:
	rm -rf build build-asan build-fuzz

# The official clients (Debian's azure-cli, npm's @azure/batch) against the
# emulator; installs them on request. Not part of 'test'.
interop:
	@sh tests/interop/run.sh

-include $(OBJS:.o=.d)
