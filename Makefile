# Plexus: `make demo` and `make test` work on a fresh Debian machine with only Node/npm.
SHELL := /bin/bash
.DEFAULT_GOAL := build

PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib/plexus
CNI_BIN_DIR ?= /opt/cni/bin
CNI_CONF_DIR?= /etc/cni/net.d
UNIT_DIR    ?= /etc/systemd/system

# What the agent, the fixture and the demo need on the machine.
APT_RUNTIME := iproute2 iptables nftables kmod procps psmisc iputils-ping busybox-static dnsutils iperf3 daemontools wireguard-go wireguard-tools
# Reference clients and measurements used by tests and benchmarks (prometheus: promtool checks GET /metrics).
APT_TEST    := containernetworking-plugins dnsmasq-base podman runc containerd prometheus tcpdump chromium
APT_BENCH   := dnsperf etcd-server etcd-client

STAMP := .make

.PHONY: deps deps-test deps-bench build lint test demo bench install uninstall clean

# Installs only what is missing, so repeated runs cost nothing.
define apt_ensure
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  [ "$$(id -u)" = 0 ] || { echo "apt: need root to install$$missing" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps: node_modules/.package-lock.json
	$(call apt_ensure,$(APT_RUNTIME))

deps-test: deps
	$(call apt_ensure,$(APT_TEST))

deps-bench: deps-test
	$(call apt_ensure,$(APT_BENCH))

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: deps
	npm run --silent build
	@mkdir -p dist/bin
	@printf '#!/bin/sh\nexec node "%s/dist/src/cli/main.js" "$$@"\n' "$(CURDIR)" > dist/bin/plexctl
	@printf '#!/bin/sh\nexec "%s/dist/src/agent/main.js" "$$@"\n' "$(CURDIR)" > dist/bin/plexusd
	@chmod +x dist/bin/plexctl dist/bin/plexusd

# Installs packages only when there are none: never reinstalls them under a test running from the
# same tree (after a rebase the lock file is newer; `make build` and `make test` reinstall then).
lint:
	@[ -x node_modules/.bin/biome ] || $(MAKE) --no-print-directory node_modules/.package-lock.json
	npx biome check .
	npx depcruise src cni --config .dependency-cruiser.cjs

test: deps-test build lint
	npx tap

demo: build
	scripts/demo.sh

# Each bench keeps its JSON line in bench/results/; the README's table is rewritten from those files.
# Long soaks (LONG_BENCHES: tens of minutes each) run only with BENCH_LONG=1.
LONG_BENCHES := bench/conn-soak bench/chaos
bench: deps-bench build
	@set -e; for b in bench/*; do \
	  [ -x "$$b" ] && [ -f "$$b" ] || continue; \
	  case " $(LONG_BENCHES) " in *" $$b "*) [ -n "$$BENCH_LONG" ] || { echo "== $$b skipped (BENCH_LONG=1 runs it)" >&2; continue; };; esac; \
	  echo "== $$b" >&2; "$$b"; \
	done
	node dist/bench/table.js

install: build
	install -d $(LIBDIR) $(PREFIX)/bin $(CNI_BIN_DIR) $(CNI_CONF_DIR) $(UNIT_DIR)
	rm -rf $(LIBDIR)/dist $(LIBDIR)/node_modules
	cp -a dist package.json package-lock.json $(LIBDIR)/
	cd $(LIBDIR) && npm ci --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null
	printf '#!/bin/sh\nexec $(LIBDIR)/dist/src/agent/main.js "$$@"\n' > $(PREFIX)/bin/plexusd
	printf '#!/bin/sh\nexec node $(LIBDIR)/dist/src/cli/main.js "$$@"\n' > $(PREFIX)/bin/plexctl
	chmod 755 $(PREFIX)/bin/plexusd $(PREFIX)/bin/plexctl
	install -m 755 dist/cni/bin/plexus dist/cni/bin/plexus-node $(CNI_BIN_DIR)/
	[ -e $(CNI_CONF_DIR)/10-plexus.conflist ] || install -m 644 cni/10-plexus.conflist $(CNI_CONF_DIR)/10-plexus.conflist
	install -m 644 scripts/plexusd.service $(UNIT_DIR)/plexusd.service
	@echo "installed; start with: systemctl daemon-reload && systemctl enable --now plexusd"

uninstall:
	-[ -x $(PREFIX)/bin/plexusd ] && $(PREFIX)/bin/plexusd --cleanup
	rm -rf $(LIBDIR) $(PREFIX)/bin/plexusd $(PREFIX)/bin/plexctl $(CNI_BIN_DIR)/plexus $(CNI_BIN_DIR)/plexus-node $(UNIT_DIR)/plexusd.service
	rm -f $(CNI_CONF_DIR)/10-plexus.conflist

clean:
	rm -rf dist .tap
