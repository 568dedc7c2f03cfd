# behavior-lake: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV ?= local
SIZES ?= 1000000,5000000
PYTEST_ARGS ?=
PIPELINE_ARGS ?=
BENCH_ARGS ?=

.PHONY: bench-activation kafka-up kafka-down bench-experiments test-e2e report system-deps help install jars jars-lock cluster-up cluster-down test run generate pipeline lint format bench bench-sessions bench-lake wheel clean check-java mlflow-ui databricks-bundle docs

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo ">> installing behavior-lake and pinned dependencies into $(VENV) (first time: a few minutes)"
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]" 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	@# Bytecode for the installed packages, written once: with PYTHONDONTWRITEBYTECODE set
	@# (common in containers and CI) pip writes none and every process would compile
	@# pyspark, mlflow, pandas... from source again.
	@echo ">> compiling installed packages to bytecode"
	@$(PY) -m compileall -q -j 0 $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') >/dev/null || echo "warning: compileall reported errors (imports still work, only slower)"
	@touch $(STAMP)

JARS_STAMP := .jars/.complete

# The locked JVM jars (infra/jars/jars.lock): Delta for the delta-spark engine, hadoop-aws
# and the AWS SDK for s3a://. Without Maven Central this warns and carries on: the
# engine then falls back to delta-rs (one log line says so) and s3a:// paths are refused.
$(JARS_STAMP): infra/jars/jars.lock | $(STAMP)
	@if $(PY) -m behavior_lake.jars fetch; then touch $(JARS_STAMP); fi

install: $(STAMP) $(JARS_STAMP) ## Create or refresh .venv and the jar cache (.jars/) from the lock files

jars: $(STAMP) ## Download the locked JVM jars into .jars/ (checksummed; needs Maven Central)
	$(PY) -m behavior_lake.jars fetch && touch $(JARS_STAMP)

jars-lock: $(STAMP) ## Re-resolve infra/jars/pom.xml with Maven into infra/jars/jars.lock
	$(PY) -m behavior_lake.jars lock

check-java:
	@if [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ]; then exit 0; fi; \
	 command -v java >/dev/null 2>&1 || { echo "error: Java not found: Spark needs a Java 17 or 21 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)" >&2; exit 1; }

# Debian packages the tests use: chromium and its driver (the insights report is checked
# in a real headless browser). As root they are installed; otherwise one line says how.
SYSTEM_PACKAGES := chromium:chromium chromedriver:chromium-driver redis-server:redis-server
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	 if [ -z "$$missing" ]; then exit 0; fi; \
	 if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	   echo ">> installing Debian packages:$$missing"; \
	   (apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }) || \
	   { echo "error: apt-get install$$missing failed" >&2; exit 1; }; \
	 else echo "error: the tests need$$missing: run sudo apt-get install$$missing" >&2; exit 1; fi

test: check-java system-deps $(STAMP) $(JARS_STAMP) ## Lint, then the whole test suite (unit, Lake contract on both engines, integration)
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-e2e: check-java $(STAMP) $(JARS_STAMP) ## The end-to-end runs: cluster, S3, catalog names, engine parity, planted experiments, day-by-day silver, concurrent ingestion, Kafka (~27 min)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

generate: check-java $(STAMP) $(JARS_STAMP) ## Write the demo landing set (jobs/generate_events.py)
	$(PY) jobs/generate_events.py --env $(ENV)

pipeline: check-java $(STAMP) $(JARS_STAMP) ## Run the pipeline DAG (conf/base/pipeline.yml) over landing/
	$(PY) jobs/run_pipeline.py --env $(ENV) $(PIPELINE_ARGS)

run: check-java $(STAMP) $(JARS_STAMP) ## Generate demo data and run the whole pipeline locally (one Spark session)
	$(PY) jobs/run_pipeline.py --env $(ENV) --generate $(PIPELINE_ARGS)
	@echo; echo "Done. Tables: ./lakehouse/<layer>/<table> (run log: ops.job_runs, SLAs: ops.sla_breaches)."
	@echo "Models and plots: make mlflow-ui"

report: check-java $(STAMP) $(JARS_STAMP) ## Write the insights site from gold (reports/insights/index.html; after make run)
	$(PY) jobs/build_report.py --env $(ENV)

docs: $(STAMP) ## Regenerate the README's jobs/tables/config blocks, docs/tables.md and docs/config.md
	$(PY) -m behavior_lake.docgen

databricks-bundle: $(STAMP) ## Generate infra/databricks (bundle + job) from conf/base/pipeline.yml
	$(PY) -m behavior_lake.databricks_bundle --out infra/databricks

CLUSTER_DIR ?= .cluster
WORKERS ?= 2
cluster-up: check-java $(STAMP) $(JARS_STAMP) ## Start a Spark standalone master + $(WORKERS) workers on 127.0.0.1 (state and logs in .cluster/)
	$(PY) -m behavior_lake.standalone up --dir $(CLUSTER_DIR) --workers $(WORKERS)

cluster-down: $(STAMP) ## Stop the standalone cluster started by cluster-up
	$(PY) -m behavior_lake.standalone down --dir $(CLUSTER_DIR)

kafka-up: check-java $(STAMP) $(JARS_STAMP) ## Start a single-node Kafka broker on 127.0.0.1 for activation.source kafka (state and log in .kafka/)
	$(PY) -m behavior_lake.localkafka up --dir .kafka

kafka-down: $(STAMP) ## Stop the broker started by kafka-up
	$(PY) -m behavior_lake.localkafka down --dir .kafka

MLFLOW_PORT ?= 5000
mlflow-ui: $(STAMP) ## Serve the local MLflow store (runs, plots, registry) on 127.0.0.1
	@mkdir -p mlruns
	@echo ">> MLflow UI on http://127.0.0.1:$(MLFLOW_PORT) (Ctrl-C to stop)"
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) \
	  --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root ./mlruns/artifacts

lint: $(STAMP) ## ruff check + format check + the import layering contract (pyproject.toml)
	$(VENV)/bin/ruff check lib jobs tests bench notebooks
	$(VENV)/bin/ruff format --check lib jobs tests bench notebooks
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP) ## ruff fix + format
	$(VENV)/bin/ruff check --fix lib jobs tests bench
	$(VENV)/bin/ruff format lib jobs tests bench

bench: check-java $(STAMP) $(JARS_STAMP) ## Per-stage pipeline benchmark (SIZES=1000000,5000000): time, events/s, driver memory, scaling, side by side
	$(PY) bench/pipeline_bench.py --sizes $(SIZES) $(BENCH_ARGS)

bench-sessions: check-java $(STAMP) $(JARS_STAMP) ## Sessionization alone: ours vs DuckDB vs naive UDF (SIZES=...)
	$(PY) bench/sessions_bench.py --sizes $(SIZES)

bench-lake: check-java $(STAMP) $(JARS_STAMP) ## Lake write/read throughput and driver memory (SIZES=...)
	$(PY) bench/lake_bench.py --sizes $(SIZES)

bench-activation: check-java $(STAMP) $(JARS_STAMP) system-deps ## Activation latency: micro-batch and real-time mode (Kafka) event -> decision, API p50/p99 at 200 and 1,000 req/s
	$(PY) bench/activation_bench.py $(BENCH_ARGS)

bench-experiments: $(STAMP) ## Coverage, false positives, CUPED, SRM: 2,000 simulated A/A and A/B runs, 200 experiments from the generator
	$(PY) bench/experiments_bench.py $(BENCH_ARGS)

wheel: $(STAMP) ## Build the wheel into dist/
	$(PY) -m pip wheel --quiet --no-deps -w dist .

clean: ## Remove build outputs, local lake, landing data and caches (keeps .venv)
	rm -rf dist build lib/*.egg-info .pytest_cache .ruff_cache spark-warehouse metastore_db derby.log
	rm -rf lakehouse landing truth mlruns mlflow.db reports
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
