# The two commands of the README, and the checks behind them.
.PHONY: run test demo setup lint jslint typecheck template-check unit integration bench openapi localstack-test chaos

setup:
	@scripts/setup.sh

run: setup
	.venv/bin/pilot run

lint: setup
	.venv/bin/ruff check shared devtools functions tests bench infra

jslint:
	@scripts/jslint.sh

typecheck: setup
	.venv/bin/mypy

template-check: setup
	.venv/bin/cfn-lint template.yaml
	scripts/sam-validate.sh
	scripts/layer-contents.sh

test: setup lint jslint typecheck template-check
	scripts/install-browser.sh
	.venv/bin/pytest -q

demo: setup
	.venv/bin/pilot demo

unit: setup
	.venv/bin/pytest -q tests/unit

bench: setup
	.venv/bin/python bench/run_all.py

openapi: setup
	.venv/bin/python -m pilot_dev.contract --write

localstack-test: setup
	scripts/localstack-test.sh

# The fault suite (tests/chaos/): `pilot run` subprocesses killed with -9, endpoints cut.
# Loopback only, bounded (each test has its own timeout); prints its counts at the end.
chaos: setup
	.venv/bin/pytest -q -m chaos tests/chaos --timeout=900
