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
# so that the hand-written rules keep working when JAX makes it the default: every rule (gradcheck, ops),
# and whole models against finite differences and with each rule shown to be the one jax.grad runs (the
# full activation × loss grid of test_model_gradients runs once, in the main suite, to keep its time).
MODEL_GRADIENTS := tests/test_model_gradients.py
VJP3_TESTS := tests/test_gradcheck.py tests/test_ops.py $(MODEL_GRADIENTS)::test_model_gradients_vs_finite_differences \
	$(MODEL_GRADIENTS)::test_jax_grad_runs_a_hand_written_rule_for_every_op_of_the_forward \
	$(MODEL_GRADIENTS)::test_an_altered_rule_changes_jax_grad_but_not_the_forward \
	$(MODEL_GRADIENTS)::test_an_altered_loss_rule_changes_jax_grad

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not bench_harness"
	JAX_CUSTOM_VJP3=1 $(BIN)/python -m pytest -q -n 2 $(VJP3_TESTS)

# The benchmark harness's quick end-to-end test first (every regime and competitor measured and reported), then
# the benchmarks themselves.
bench: $(STAMP)
	$(BIN)/python -m pytest -q -m bench_harness tests/test_benchmarks.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/lbfgs.py --json benchmarks/results-lbfgs.json

# On a GPU/TPU host: gradient checks, the seed example, jaxnn-train and a short benchmark on that device,
# with a one-page report in benchmarks/device-check-<device>.md (scripts/device_check.py).  It runs with the
# host's own Python and its accelerator build of JAX (not .venv, whose pins are the CPU-tested set); that
# Python needs jaxnn's dependencies plus pytest, hypothesis and pytest-xdist.
DEVICE_PYTHON ?= python3
device-check:
	PYTHONPATH=. $(DEVICE_PYTHON) scripts/device_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
