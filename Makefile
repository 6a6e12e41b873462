# Everything a fresh machine needs: `make demo` runs netspec on specs/, `make test` runs the tests.
# Both create (or reuse) .venv, install the project with its test dependencies, and install
# Debian's graphviz when the `dot` program is missing. netspec is then .venv/bin/netspec (or
# `netspec` after `source .venv/bin/activate`). `make bench` also installs the `bench` extra.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# -qq: errors only (not pip's warnings about this machine's package indexes, nor setuptools' notes on editable installs)
PIP    := $(PY) -m pip -qq --disable-pip-version-check
NETSPEC := $(VENV)/bin/netspec
# torch is pinned for the install step only (a CPU build lies on the project's machines);
# the package itself asks for a range.
TORCH  ?= torch==2.13.0
SPECS  := $(sort $(wildcard specs/*.yaml))

.PHONY: demo test lint bench docs gallery clean setup graphviz fuzz

setup: $(VENV)/.installed graphviz

$(VENV)/.installed: pyproject.toml
	@echo "setting up $(VENV): netspec and its test dependencies (torch pinned to $(TORCH))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@$(PIP) install "$(TORCH)"
	@$(PIP) install -e ".[test]"
	@touch $@

$(VENV)/.bench: $(VENV)/.installed
	@$(PIP) install -e ".[test,bench]"
	@touch $@

graphviz:
	@command -v dot >/dev/null || { \
	  echo "installing Debian's graphviz (the dot program)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; }

# netspec's main job on the shipped specs: check them all, summarize one, draw the gallery, compile one, train one.
RUN := runs/cnn_digits-$(shell date +%Y%m%d-%H%M%S)
demo: setup
	@echo "== netspec validate specs/*.yaml"
	@$(NETSPEC) validate -q $(SPECS) && echo "all $(words $(SPECS)) specs are valid"
	@echo "== netspec summary specs/cnn_digits.yaml"
	@$(NETSPEC) summary specs/cnn_digits.yaml
	@echo "== netspec draw: the gallery"
	@$(MAKE) --no-print-directory gallery
	@echo "== netspec compile specs/resnet18.yaml -o out/resnet18.py"
	@mkdir -p out && $(NETSPEC) compile -q specs/resnet18.yaml -o out/resnet18.py
	@echo "== netspec train specs/cnn_digits.yaml --out $(RUN) -q   (one line per epoch in $(RUN)/log.txt)"
	@$(NETSPEC) train specs/cnn_digits.yaml --out $(RUN) -q && sed -n '1p;$$p' $(RUN)/log.txt
	@echo "== written"
	@echo "gallery:    docs/gallery/ (and the cookbook's diagrams in docs/cookbook/)"
	@echo "compiled:   out/resnet18.py"
	@echo "run folder: $(RUN)"
	@echo "netspec is not on your PATH: run $(NETSPEC), or 'source $(VENV)/bin/activate' first"

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check netspec tests benchmarks

bench: setup $(VENV)/.bench
	$(PY) benchmarks/analysis_speed.py
	$(PY) benchmarks/draw_speed.py

# docs/gallery/*.svg and docs/cookbook/*.svg: the lecture's networks drawn from specs/, every one redrawn each
# time (the list and the depths are netspec/docsite.py's GALLERY and COOKBOOK).
gallery: setup
	@$(PY) -m netspec.docsite docs --diagrams

# The generated references (below each file's marker line) and the JSON Schema editors read; tests keep them current.
# Then the gallery and cookbook pages with their diagrams (netspec/docsite.py), and the site (mkdocs.yml) into site/.
docs: setup
	$(PY) -m netspec.docgen docs/layers.md docs/training.md docs/cli.md
	$(NETSPEC) schema -o docs/netspec.schema.json
	$(PY) -m netspec.docsite docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet
	@echo "the site is in site/ (open site/index.html, or serve it: $(PY) -m mkdocs serve)"

clean:
	rm -rf $(VENV) out runs site .pytest_cache .hypothesis

# Fuzzing (docs/security.md, "Fuzzing"): thousands of mutated specs through validate and compile, 2,000 random
# specs against torch, then the coverage-guided harnesses of the loader and the expression evaluator.
FUZZ_SEED    ?= $(shell date +%s)
FUZZ_CASES   ?= 5000
FUZZ_SECONDS ?= 300

$(VENV)/.fuzz: $(VENV)/.installed
	@$(PIP) install "atheris>=2.3" || echo "atheris did not install: its harnesses will say they are skipped"
	@touch $@

fuzz: setup $(VENV)/.fuzz
	$(PY) -m tests.fuzz.run --cases $(FUZZ_CASES) --seed $(FUZZ_SEED)
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest -p no:cacheprovider -q tests/test_fuzz.py -k random_specs_meet_torch
	$(PY) -m tests.fuzz.atheris_loader -max_total_time=$(FUZZ_SECONDS)
	$(PY) -m tests.fuzz.atheris_expr -max_total_time=$(FUZZ_SECONDS)
