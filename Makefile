# The two commands a newcomer needs: `make run` and `make test` (the full suite CI runs); `make check` is the quick
# tier for everyday work (lint, types and the tests that start no Rasa and no browser; not the multi-process fault
# tests marked cluster, nor the few marked slow, whose cost is their point: training on and scanning the real shared
# data sets, routing at scale). `python -m benchmarks.quick_tier` times it. Logic lives in scripts/install and the
# kefu CLI.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
KEFU := .venv/bin/kefu
# pytest-xdist: one worker per core, each test module whole on one worker (tests/conftest.py groups them).
# PYTHONDONTWRITEBYTECODE (set in some shells and images) would make every worker rewrite every test module's
# asserts again at each run; the rewritten modules are cached in the ignored __pycache__ folders instead.
PYTEST := env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m pytest -p no:cacheprovider -n auto --dist loadgroup --no-loadscope-reorder

.PHONY: run test check install lint

run: install
	$(KEFU) run

test: install
	scripts/install --with-browser
	$(KEFU) db upgrade
	$(KEFU) train --if-missing
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports
	.venv/bin/mypy
	$(PYTEST)

check: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports
	.venv/bin/mypy
	$(PYTEST) -q -m "not rasa and not browser and not slow and not cluster"

install:
	scripts/install

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports
	.venv/bin/mypy
