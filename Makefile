# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make train   create .venv, install jaxnn, train the seed's iris network
#   make test    create .venv, install jaxnn, run ruff and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# The versions tested on every commit (Python 3.11, constraints.txt).  For the newest releases pyproject.toml allows
# (JAX 0.11 and later need Python 3.12+): make test PYTHON=python3.12 VENV=.venv-next PINS=
# and for the set of them the suite last passed with: PINS='-c constraints-next.txt'
PINS ?= -c constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test lint bench device-check xor clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PINS) -e ".[dev,cli,plots]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python scripts/train.py

xor: $(STAMP)
	$(BIN)/python scripts/xor.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The hand-written rules run a second time under JAX's next custom_vjp implementation (jax_custom_vjp3), so
# that they keep working when JAX makes it the default: make_op's wiring (test_ops), every op of the forward
# through jax.grad against finite differences and shown to be the rule jax.grad runs (test_model_gradients; the
# full activation × loss grid runs once, in the main suite, to keep its time), and the gradient checks whose
# forward is itself an op (test_gradcheck).  test_gradcheck's other tests call each rule and jax.vjp of the plain
# forward directly, which no custom_vjp implementation touches: they run once, in the main suite.
MODEL_GRADIENTS := tests/test_model_gradients.py
GRADCHECK := tests/test_gradcheck.py
VJP3_TESTS := tests/test_ops.py $(MODEL_GRADIENTS)::test_model_gradients_vs_finite_differences \
	$(MODEL_GRADIENTS)::test_jax_grad_runs_a_hand_written_rule_for_every_op_of_the_forward \
	$(MODEL_GRADIENTS)::test_an_altered_rule_changes_jax_grad_but_not_the_forward \
	$(MODEL_GRADIENTS)::test_an_altered_loss_rule_changes_jax_grad \
	$(GRADCHECK)::test_finite_differences_catch_what_autodiff_cannot \
	$(GRADCHECK)::test_finite_differences_in_random_directions_for_large_primals \
	$(GRADCHECK)::test_a_wrong_rule_next_to_a_kink_is_still_a_gradcheck_error \
	$(GRADCHECK)::test_a_rule_that_differs_from_autodiff_only_at_a_kink_is_the_kink_value_error

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not bench_harness"
	JAX_CUSTOM_VJP3=1 $(BIN)/python -m pytest -q -n 2 $(VJP3_TESTS)

# The benchmark harness's quick end-to-end test first (every regime and competitor measured and reported), then
# the benchmarks themselves (the last prints the compilation cache's table of benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python -m pytest -q -m bench_harness tests/test_benchmarks.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/lbfgs.py --json benchmarks/results-lbfgs.json
	$(BIN)/python benchmarks/cache_bound.py

# On a GPU/TPU host: gradient checks, the seed example, jaxnn-train and a short benchmark on that device,
# with a one-page report in benchmarks/device-check-<device>.md (scripts/device_check.py).  It runs with the
# host's own Python and its accelerator build of JAX (not .venv, whose pins are the CPU-tested set); that
# Python needs jaxnn's dependencies plus pytest, hypothesis and pytest-xdist.
DEVICE_PYTHON ?= python3
device-check:
	PYTHONPATH=. $(DEVICE_PYTHON) scripts/device_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
