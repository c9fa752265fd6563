# irtlake — the two commands: `make demo` and `make test`.
#
# One target directory serves every build (set CARGO_TARGET_DIR to keep it warm
# across clones, as .ci/run does). `make test` builds the workspace once, in the dev
# profile with optimised dependencies; release builds belong to demo, bench, lambda.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# Python tools (S3-protocol test server, benchmark peers) live in one virtualenv.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
LAKE ?= file://./lake
# The demo platform covers 60 days from 2026-01-05; its last day is the run date.
DEMO_START_DATE ?= 2026-01-05
DEMO_RUN_DATE ?= 2026-03-05
DEMO_PROFILE ?= release-nonlto
IRTLAKE_RELEASE := $(TARGET_DIR)/$(DEMO_PROFILE)/irtlake

export IRTLAKE_VENV := $(VENV)


.PHONY: help deps system-deps venv test lint ci demo clean-demo bench bench-stages bench-scale
.PHONY: bench-lambda lambda infra-check

help:
	@echo "make demo   - build (release), generate the demo platform into ./lake, run every stage, print a summary"
	@echo "make test   - install what is missing, then run every test"
	@echo "make lint   - cargo fmt --check and clippy -D warnings"
	@echo "make ci     - make test, then make lint (what CI runs)"
	@echo "make bench  - benchmarks with ratios against peers"
	@echo "make bench-scale - calibrate at 10k and 100k students (SCALE_STUDENTS=...): wall, peak RSS, students with θ, A/B capped vs uncapped;"
	@echo "                   then every stage per shard at 10k and 100k students, 8 shards (SCALE_PIPELINE=\"10000:8 100000:8 400000:32\" adds 400k)"
	@echo "make lambda - build the arm64 Lambda zip (one bootstrap for every stage) and print its size"
	@echo "make infra-check - parse and check infra/ (HCL, ASL, checkov, terraform fmt/validate when installed)"

# ---------------------------------------------------------------- setup
deps: venv system-deps

# Debian packages the tests use (PostgreSQL for the export, Chromium for reports).
system-deps:
	@tools/install-system-deps.sh

$(VENV)/.installed: tools/requirements-test.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tools/requirements-test.txt
	@touch $@

venv: $(VENV)/.installed

# ---------------------------------------------------------------- test
test: deps infra-check
	$(CARGO) build --workspace --all-targets --locked
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --locked --no-fail-fast; \
	fi

# What CI runs (.ci/run runs the two in this order): every test, then the lint bar.
ci: test lint

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# ---------------------------------------------------------------- demo
$(IRTLAKE_RELEASE): FORCE
	$(CARGO) build --profile $(DEMO_PROFILE) --locked -p irtlake-cli

demo: $(IRTLAKE_RELEASE)
	@if [ ! -d lake/attempts ]; then \
	  echo "== generating the demo platform into ./lake"; \
	  time $(IRTLAKE_RELEASE) --lake $(LAKE) demo-data --students 10000 --items 400 --days 60 --seed 42 --truth-dir truth; \
	else echo "== ./lake exists: keeping it (make clean-demo to start over)"; fi
	@echo "== the pipeline: irtlake run executes infra/statemachine/pipeline.asl.json locally"
	@echo "   (from calibrate: the demo has no PostgreSQL; banks: all + every subject;"
	@echo "    features and kpis backfilled over the demo's 60 days)"
	time $(IRTLAKE_RELEASE) --lake $(LAKE) run --run-date $(DEMO_RUN_DATE) --from calibrate \
	  --all-subjects --backfill-from $(DEMO_START_DATE)
	@echo "== summary"
	$(IRTLAKE_RELEASE) --lake $(LAKE) status
	$(IRTLAKE_RELEASE) --lake $(LAKE) sql "SELECT dt, count(*) AS attempts FROM attempts GROUP BY dt ORDER BY dt LIMIT 3"
	$(IRTLAKE_RELEASE) --lake $(LAKE) sql -f sql/checks/01_latest_fit.sql
	$(IRTLAKE_RELEASE) --lake $(LAKE) sql -f sql/checks/02_latest_items.sql
	$(IRTLAKE_RELEASE) --lake $(LAKE) sql -f sql/checks/05_features_theta_coverage.sql
	$(IRTLAKE_RELEASE) --lake $(LAKE) sql -f sql/checks/06_it_method_counts.sql
	@echo "== reports (written by the run's reports stage): a student report and the cohort report to open"
	$(IRTLAKE_RELEASE) --lake $(LAKE) sql -f sql/checks/08_report_links.sql

# ./lake is also the `lake` crate's folder: remove the table folders, keep the crate.
clean-demo:
	find lake -mindepth 1 -maxdepth 1 ! -name src ! -name Cargo.toml -exec rm -rf {} +
	rm -rf truth

$(VENV)/.bench-installed: tools/requirements-bench.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r tools/requirements-bench.txt
	@touch $@

# Benchmarks: each prints its figures and a ratio against a peer measured in the same run.
bench: $(VENV)/.bench-installed $(IRTLAKE_RELEASE)
	$(CARGO) build --profile $(DEMO_PROFILE) --locked -p models --example bench_irt
	@mkdir -p bench-out
	@echo "== IRT engine (release, $$(nproc) cores)"
	$(TARGET_DIR)/$(DEMO_PROFILE)/examples/bench_irt bench-out | tee bench-out/irtlake.jsonl
	@echo "== irtlake irt fit end to end on the sparse bank's CSV"
	$(PY) bench/irt_fit.py $(IRTLAKE_RELEASE) bench-out/sparse_10000x400x50.csv bench-out/irt-fit | tee bench-out/irt_fit.jsonl
	@echo "== peer: Python girth on the same complete 5000 x 60 matrix and sparse bank (the sparse fit takes minutes)"
	$(PY) bench/girth_peer.py bench-out/complete_5000x60.csv bench-out/sparse_10000x400x50.csv | tee bench-out/girth.jsonl
	@$(PY) bench/ratio.py bench-out/irtlake.jsonl bench-out/girth.jsonl bench-out/irt_fit.jsonl
	@$(MAKE) --no-print-directory bench-stages
	@$(MAKE) --no-print-directory bench-lambda

# Wall time of every stage on the demo platform (a fresh lake under bench-out/).
bench-stages: $(IRTLAKE_RELEASE)
	@rm -rf bench-out/lake bench-out/truth
	@bench/stages.sh $(IRTLAKE_RELEASE) file://$(CURDIR)/bench-out/lake bench-out/truth $(DEMO_START_DATE) $(DEMO_RUN_DATE)

# Calibrate at platform size (issue 11): lakes of SCALE_STUDENTS students under
# bench-out/ (generated once, kept), calibrate capped and uncapped under /usr/bin/time.
SCALE_STUDENTS ?= 10000 100000
# The whole pipeline at scale (bench/pipeline-scale.sh): STUDENTS:SHARDS per run; the
# 400k × 32 shards run takes most of an hour on 2 cores, so it is asked for explicitly.
SCALE_PIPELINE ?= 10000:8 100000:8
bench-scale: $(IRTLAKE_RELEASE)
	@echo "== calibrate at scale (release, $$(nproc) cores): 2000 questions, 60 days, run date $(DEMO_RUN_DATE)"
	@bench/scale.sh $(IRTLAKE_RELEASE) bench-out $(DEMO_RUN_DATE) $(SCALE_STUDENTS)
	@echo "== the pipeline at scale, one process per stage invocation (STUDENTS:SHARDS: $(SCALE_PIPELINE))"
	@bench/pipeline-scale.sh $(IRTLAKE_RELEASE) bench-out $(DEMO_RUN_DATE) $(SCALE_PIPELINE)

# Lambda cold start of the bootstrap (host build of the same code): process start ->
# first poll of the Runtime API, median of 20 starts.
bench-lambda: $(IRTLAKE_RELEASE)
	@echo "== Lambda cold start (irtlake as bootstrap, STAGE=kpis)"
	@python3 bench/cold_start.py $(IRTLAKE_RELEASE) file://$(CURDIR)/bench-out/lake 20 | tee bench-out/cold_start.jsonl

# ---------------------------------------------------------------- lambda
# One zip for every stage: the irtlake binary is the `bootstrap` (it serves the stage
# named by STAGE when the Lambda runtime starts it). Cross-compiled for arm64
# (Graviton, provided.al2023) by cargo-lambda with zig, in the `release` profile.
# CA bundles in infra/certs/*.pem (e.g. the RDS bundle) ship in the zip for sslrootcert.
LAMBDA_ZIP := $(TARGET_DIR)/lambda/irtlake/bootstrap.zip
LAMBDA_MAX_BYTES := 52428800

$(VENV)/.lambda-installed: tools/requirements-lambda.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tools/requirements-lambda.txt
	@touch $@

lambda: $(VENV)/.lambda-installed
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda build --release --arm64 \
	  --output-format zip --bin irtlake --locked --lambda-dir $(TARGET_DIR)/lambda \
	  $(if $(wildcard infra/certs/*.pem),--include infra/certs)
	@bytes=$$(stat -c %s $(LAMBDA_ZIP)); \
	  echo "lambda zip: $(LAMBDA_ZIP) $$bytes bytes ($$((bytes / 1048576)) MiB; limit 50 MiB)"; \
	  test $$bytes -lt $(LAMBDA_MAX_BYTES) || { echo "the zip is over the 50 MB direct-upload limit" >&2; exit 1; }
	@echo "deploy: terraform -chdir=infra/terraform apply -var lambda_zip=$(LAMBDA_ZIP)"

# ---------------------------------------------------------------- infra
# Checks of infra/ that run offline (tools/infra_check.py): every .tf parses
# (python-hcl2, in $(VENV)), the ASL and Terraform agree, the ASL passes asl-validator
# (npm, pinned by tools/asl-validator/package-lock.json, installed with `npm ci` under
# $(VENV)), checkov has no failed check (checkov lives in its own virtualenv: it pins
# older boto3/botocore than moto wants and installs its own `hcl2` module), terraform
# fmt/validate when terraform is on PATH (providers from TF_PLUGIN_DIR, a filesystem
# mirror, when set).
CHECKOV_VENV ?= $(VENV)/checkov-venv
ASL_VALIDATOR_DIR ?= $(VENV)/asl-validator
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins))

$(VENV)/.infra-installed: tools/requirements-infra.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tools/requirements-infra.txt
	@touch $@

$(CHECKOV_VENV)/.installed: tools/requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
	@touch $@

# npm comes from Debian (tools/install-system-deps.sh) when missing.
$(ASL_VALIDATOR_DIR)/.installed: tools/asl-validator/package.json tools/asl-validator/package-lock.json
	@command -v npm >/dev/null 2>&1 || tools/install-system-deps.sh
	@mkdir -p $(ASL_VALIDATOR_DIR)
	cp tools/asl-validator/package.json tools/asl-validator/package-lock.json $(ASL_VALIDATOR_DIR)/
	npm ci --prefix $(ASL_VALIDATOR_DIR) --no-audit --no-fund --silent
	@touch $@

infra-check: $(VENV)/.infra-installed $(CHECKOV_VENV)/.installed $(ASL_VALIDATOR_DIR)/.installed
	TF_PLUGIN_DIR="$(TF_PLUGIN_DIR)" $(PY) tools/infra_check.py --checkov $(CHECKOV_VENV)/bin/checkov \
	  --asl-validator $(ASL_VALIDATOR_DIR)/node_modules/.bin/asl-validator

FORCE:
