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

.PHONY: demo test lint bench docs gallery clean setup graphviz

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

# netspec's main job on the shipped specs: check them all, list one, draw the gallery, train one.
demo: setup
	$(NETSPEC) validate $(SPECS)
	$(NETSPEC) summary specs/resnet18.yaml
	$(MAKE) --no-print-directory gallery
	$(NETSPEC) train specs/cnn_digits.yaml

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check netspec tests benchmarks

bench: setup
	$(PY) benchmarks/analysis_speed.py
	$(PY) benchmarks/draw_speed.py

# docs/gallery/*.svg: the lecture's networks drawn from specs/ (DEPTH_<spec> overrides the default depth).
GALLERY := mlp_digits lenet5 vgg16 resnet18 resnet152 lstm_classifier conv_autoencoder vae unet
DEPTH_resnet18  := 9
DEPTH_resnet152 := 0

gallery: setup
	@mkdir -p docs/gallery
	@$(foreach s,$(GALLERY),$(NETSPEC) draw specs/$(s).yaml -o docs/gallery/$(s).svg \
	  $(if $(DEPTH_$(s)),--depth $(DEPTH_$(s))) &&) true

docs: setup
	$(PY) -m netspec.docgen docs/layers.md docs/training.md

clean:
	rm -rf $(VENV) out runs .pytest_cache .hypothesis
