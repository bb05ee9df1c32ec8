# The two commands of the README, and the checks behind them.
.PHONY: run test demo setup lint jslint typecheck template-check iac-scan iac-test unit integration bench openapi localstack-test deploy

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
	$(MAKE) iac-scan

# checkov on template.yaml (its own venv, scripts/checkov.sh); fails on any finding not
# justified in docs/deploy.md's table of accepted findings.
iac-scan: setup
	.venv/bin/python -m pilot_dev.iac_scan

# The tests marked iac (checkov and the SAM translator on the template; ~20 s once their
# venvs exist). Plain `pytest` runs them too.
iac-test: setup
	.venv/bin/pytest -q -m iac

# sam build + sam deploy, then the dashboard's files to the edge bucket (docs/deploy.md).
# Arguments: make deploy CONFIG_ENV=dev   (a samconfig.toml environment; default "default")
deploy: setup
	scripts/deploy.sh $(CONFIG_ENV)

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
