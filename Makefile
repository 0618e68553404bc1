# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= .venv/bin/python

.PHONY: demo test test-py313 bench lint venv mutate

venv:
	@bash scripts/bootstrap.sh

demo: venv
	$(PYTHON) examples/demo.py

test: venv
	bash scripts/test.sh $(ARGS)

# The same suite on Python 3.13 (trialbook supports 3.11 and newer; `make test` runs on the
# Python of .venv), in a venv of its own made with python3.13 or pyenv's 3.13.
# ARGS selects tests as for `make test`, e.g. make test-py313 ARGS="-x tests/test_graph.py".
test-py313:
	TRIALBOOK_VENV=.venv-py313 TRIALBOOK_PYTHON_VERSION=3.13 bash scripts/bootstrap.sh
	TRIALBOOK_VENV=.venv-py313 bash scripts/test.sh $(ARGS)

bench: venv
	# bench_scale.py in its --quick mode (its full 1,000,000 runs take minutes)
	for f in benchmarks/bench_*.py; do echo "== $$f"; args=""; \
	  if [ $$f = benchmarks/bench_scale.py ]; then args=--quick; fi; \
	  $(PYTHON) $$f $$args || exit 1; done

lint: venv
	.venv/bin/ruff check src tests benchmarks examples scripts
	.venv/bin/ruff format --check src tests benchmarks examples scripts
	.venv/bin/mypy

# Mutation testing of the core (slow, not part of CI): scripts/mutate.py, docs/testing.md.
# `make mutate ARGS="identity codecs"` runs some targets only.
mutate: venv
	$(PYTHON) -c "import mutmut" 2>/dev/null || $(PYTHON) -m pip install --quiet -e ".[test,mutate]"
	$(PYTHON) scripts/mutate.py $(ARGS)
