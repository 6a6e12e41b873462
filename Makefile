# Everything a fresh machine needs: `make demo` runs netspec on specs/, `make test` runs the tests.
# Both create (or reuse) .venv, install the project with its test dependencies, and install
# Debian's graphviz when the `dot` program is missing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NETSPEC := $(VENV)/bin/netspec
# torch is pinned for the install step only (a CPU build lies on the project's machines);
# the package itself asks for a range.
TORCH  ?= torch==2.13.0
SPECS  := $(sort $(wildcard specs/*.yaml))

.PHONY: demo test lint bench docs clean setup graphviz

setup: $(VENV)/.installed graphviz

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

graphviz:
	@command -v dot >/dev/null || { \
	  echo "installing Debian's graphviz (the dot program)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q graphviz; }

demo: setup
	$(NETSPEC) validate $(SPECS)
	$(NETSPEC) summary specs/resnet18.yaml

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check netspec tests benchmarks

bench: setup
	$(PY) benchmarks/analysis_speed.py

docs: setup
	$(PY) -m netspec.docgen docs/layers.md

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
