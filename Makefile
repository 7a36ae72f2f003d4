# hrw-preflight: entry points. Every target installs what it needs first.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_STAMP := .lab/.apt-installed
APT_PKGS := openssh-server openssh-client openssl iproute2 nftables procps util-linux gcc libc6-dev sudo curl chromium

.PHONY: setup deps lab-up lab-down demo test lint unit bench bench-reports clean

setup: $(STAMP) $(APT_STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

# Debian packages the lab needs; installed once per machine.
$(APT_STAMP): Makefile
	@mkdir -p .lab
	@if [ "$$(id -u)" != 0 ]; then echo "make: the lab needs root to install $(APT_PKGS); run as root" >&2; exit 1; fi
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	touch $@

lab-up: setup
	$(VPY) -m lab up

lab-down: $(STAMP)
	$(VPY) -m lab down

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(VPY) -m pytest -q -p no:cacheprovider tests -m "not lab"

test: setup
	bash tests/run_all.sh

demo: setup
	bash lab/demo.sh

# Takes the lab over for about 17 minutes (fleets of 25/50/100/200 and 200 without blocked
# endpoints); not alongside `make test`.
# Ends with bench-reports' figures (the 200-host page from its own 200-host run).
bench: setup
	$(VPY) -m bench.run

# Merge time and memory at 2,000 and 10,000 synthetic hosts, report.html size and render time
# in headless Chromium (no lab: synthetic bundles; a few minutes).
bench-reports: setup
	$(VPY) -m bench.reports

clean: lab-down
	rm -rf $(VENV) .lab
