# Everything a fresh Debian/Ubuntu machine (as root) needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# System tools the lab, the tests and `netplan generate` use.
APT_PACKAGES := netplan.io iperf3 openssh-server openssh-client openssh-sftp-server rsync ethtool iptables \
	iputils-ping iproute2 util-linux systemd systemd-container udev python3 python3-venv procps kmod sudo
# NetworkManager for the lab's dgx-os nodes, which start it inside their containers. On this machine it
# must never start: installed with service starts denied (policy-rc.d), then masked. A machine that
# already has it (a desktop running it) keeps it exactly as it is.
NM_PACKAGE := network-manager
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: all deps system-deps venv test lint demo bench clean

all: test

system-deps: $(VENV)/.system-deps
$(VENV)/.system-deps: Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@if ! dpkg-query -W -f='$${Status}\n' $(NM_PACKAGE) 2>/dev/null | grep -q '^install ok installed'; then \
		echo "installing $(NM_PACKAGE) for the lab's dgx-os nodes (never started on this machine)"; \
		denied=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && denied=1; fi; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(NM_PACKAGE); } >/dev/null; \
		status=$$?; if [ -n "$$denied" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		[ $$status -eq 0 ] && systemctl mask -q NetworkManager.service NetworkManager-wait-online.service; \
	fi
	@mkdir -p $(VENV) && touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

deps: system-deps venv

test: deps
	$(BIN)/ruff check sparkctl tests bench plugins
	$(BIN)/mypy
	$(BIN)/pytest -q -ra -n 2 --dist loadfile

lint: deps
	$(BIN)/ruff check sparkctl tests bench plugins
	$(BIN)/mypy
	$(BIN)/ansible-lint --profile production playbooks roles

demo: deps
	scripts/demo.sh

bench: deps
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
