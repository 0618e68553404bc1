# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= .venv/bin/python

.PHONY: demo test bench lint venv mutate

venv:
	@bash scripts/bootstrap.sh

demo: venv
	$(PYTHON) examples/demo.py

test: venv
	bash scripts/test.sh $(ARGS)

bench: venv
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PYTHON) $$f || exit 1; done

lint: venv
	.venv/bin/ruff check src tests benchmarks examples scripts
	.venv/bin/ruff format --check src tests benchmarks examples scripts
	.venv/bin/mypy

# Mutation testing of the core (slow, not part of CI): scripts/mutate.py, docs/testing.md.
# `make mutate ARGS="identity codecs"` runs some targets only.
mutate: venv
	$(PYTHON) -c "import mutmut" 2>/dev/null || $(PYTHON) -m pip install --quiet -e ".[test,mutate]"
	$(PYTHON) scripts/mutate.py $(ARGS)
