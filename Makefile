# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= .venv/bin/python

.PHONY: demo test bench lint venv

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
