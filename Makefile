# The two commands a newcomer needs: `make run` and `make test`. Logic lives in scripts/install and the kefu CLI.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
KEFU := .venv/bin/kefu

.PHONY: run test install lint

run: install
	$(KEFU) run

test: install
	scripts/install --with-browser
	$(KEFU) db upgrade
	$(KEFU) train --if-missing
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports
	.venv/bin/python -m pytest -p no:cacheprovider

install:
	scripts/install

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports
