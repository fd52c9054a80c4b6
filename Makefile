# Everything a fresh Debian/Ubuntu machine (as root) needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# System tools the lab, the tests and `netplan generate` use.
APT_PACKAGES := netplan.io iperf3 openssh-server openssh-client openssh-sftp-server ethtool iptables \
	iputils-ping iproute2 util-linux systemd systemd-container udev python3 python3-venv procps kmod
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
	$(BIN)/pytest -q -ra

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
