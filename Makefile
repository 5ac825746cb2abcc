# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make train   create .venv, install jaxnn, train the seed's iris network
#   make test    create .venv, install jaxnn, run ruff and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test lint bench device-check xor clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,cli,plots]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python scripts/train.py

xor: $(STAMP)
	$(BIN)/python scripts/xor.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The gradient checks run a second time under JAX's next custom_vjp implementation (jax_custom_vjp3),
# so that the hand-written rules keep working when JAX makes it the default.
VJP3_TESTS := tests/test_gradcheck.py tests/test_model_gradients.py tests/test_ops.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -q
	JAX_CUSTOM_VJP3=1 $(BIN)/python -m pytest -q -n 2 $(VJP3_TESTS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# On a GPU/TPU host: gradient checks, the seed example, jaxnn-train and a short benchmark on that device,
# with a one-page report in benchmarks/device-check-<device>.md (scripts/device_check.py).  It runs with the
# host's own Python and its accelerator build of JAX (not .venv, whose pins are the CPU-tested set); that
# Python needs jaxnn's dependencies plus pytest, hypothesis and pytest-xdist.
DEVICE_PYTHON ?= python3
device-check:
	PYTHONPATH=. $(DEVICE_PYTHON) scripts/device_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
