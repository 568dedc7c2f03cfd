#!/usr/bin/env bash
# Submit one behavior-lake job to a Spark cluster (standalone, YARN or Kubernetes).
#
#   infra/spark-submit/submit.sh JOB [job args...]
#   e.g. MASTER=spark://127.0.0.1:7077 infra/spark-submit/submit.sh run_pipeline --only bronze_ingest
#        MASTER=yarn infra/spark-submit/submit.sh bronze_ingest --conf bronze.max_files_per_batch=500
#
# Builds the wheel, ships it with --py-files and conf/ as an archive, adds the Delta jars
# and session extensions, and runs jobs/JOB.py with --env cluster.
#
# Jars (JARS=cache, the default): the locked jars in .jars/ (`make jars`) go with --jars,
# so nothing is downloaded; hadoop-aws and the AWS SDK are added when BEHAVIOR_LAKE_ROOT
# or BEHAVIOR_LAKE_LANDING is an s3a:// URI, Spark's Kafka source for activation_stream.
# JARS=packages asks Maven instead (--packages DELTA_PACKAGE[,HADOOP_AWS_PACKAGE]
# [,KAFKA_PACKAGE]); JARS=none adds nothing (the cluster provides them, as Databricks does).
#
# Environment: MASTER (default yarn), DEPLOY_MODE (default client), SPARK_SUBMIT (default
# spark-submit on PATH, else pyspark's), PYTHON (default .venv/bin/python), EXECUTOR_PYTHON
# (the interpreter executors run, if not the cluster's default), JARS, DELTA_PACKAGE,
# HADOOP_AWS_PACKAGE, KAFKA_PACKAGE, EXTRA_SUBMIT_ARGS, and the job's own settings and secrets
# (BEHAVIOR_LAKE_ROOT, BEHAVIOR_LAKE_LANDING, BEHAVIOR_LAKE_PSEUDONYM_KEY,
# BEHAVIOR_LAKE_ENCRYPTION_KEY; S3 credentials as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 JOB [job args...]   (JOB is a file name in jobs/ without .py)" >&2
  exit 2
fi
JOB=${1%.py}; shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$ROOT/jobs/$JOB.py" ] || { echo "error: no job jobs/$JOB.py" >&2; exit 2; }

MASTER=${MASTER:-yarn}
DEPLOY_MODE=${DEPLOY_MODE:-client}
JARS=${JARS:-cache}
DELTA_PACKAGE=${DELTA_PACKAGE:-io.delta:delta-spark_4.2_2.13:4.4.0}
HADOOP_AWS_PACKAGE=${HADOOP_AWS_PACKAGE:-org.apache.hadoop:hadoop-aws:3.5.0}
KAFKA_PACKAGE=${KAFKA_PACKAGE:-org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
if [ -z "${SPARK_SUBMIT:-}" ]; then
  SPARK_SUBMIT=$(command -v spark-submit || true)
  if [ -z "$SPARK_SUBMIT" ]; then
    SPARK_SUBMIT="$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/bin/spark-submit"
  fi
fi

S3A=0
case "${BEHAVIOR_LAKE_ROOT:-}${BEHAVIOR_LAKE_LANDING:-}" in *s3a://*) S3A=1 ;; esac

JAR_ARGS=()
case "$JARS" in
  cache)
    SETS=delta; [ "$S3A" = 1 ] && SETS="delta s3"
    [ "$JOB" = activation_stream ] && SETS="$SETS kafka"
    JAR_LIST=$(cd "$ROOT" && PYTHONPATH="$ROOT/lib" "$PYTHON" -m behavior_lake.jars path $SETS) \
      || { echo "error: the jar cache is incomplete: run \`make jars\` (or JARS=packages)" >&2; exit 1; }
    JAR_ARGS=(--jars "$JAR_LIST") ;;
  packages)
    PKGS=$DELTA_PACKAGE; [ "$S3A" = 1 ] && PKGS="$PKGS,$HADOOP_AWS_PACKAGE"
    [ "$JOB" = activation_stream ] && PKGS="$PKGS,$KAFKA_PACKAGE"
    JAR_ARGS=(--packages "$PKGS") ;;
  none) ;;
  *) echo "error: JARS=$JARS: expected cache, packages or none" >&2; exit 2 ;;
esac

mkdir -p "$ROOT/dist"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$ROOT/dist" "$ROOT"
WHEEL=$(ls -t "$ROOT"/dist/behavior_lake-*.whl | head -1)
(cd "$ROOT" && rm -f dist/conf.zip && "$PYTHON" -m zipfile -c dist/conf.zip conf/ >/dev/null)

# In cluster deploy mode the driver runs remotely: conf/ arrives as an archive.
CONF_ARGS=(--archives "$ROOT/dist/conf.zip#confarchive"
           --conf spark.yarn.appMasterEnv.BEHAVIOR_LAKE_CONF=confarchive/conf
           --conf spark.kubernetes.driverEnv.BEHAVIOR_LAKE_CONF=confarchive/conf)
if [ "$DEPLOY_MODE" = client ]; then
  export BEHAVIOR_LAKE_CONF="$ROOT/conf"
  export PYSPARK_DRIVER_PYTHON="$PYTHON"
fi
PY_ARGS=()
[ -n "${EXECUTOR_PYTHON:-}" ] && PY_ARGS=(--conf "spark.pyspark.python=$EXECUTOR_PYTHON")
# The project's log4j configuration (WARN for Spark, no notices about deliberate choices):
# shipped to the executors' working directories; a client-mode driver reads it in place.
LOG4J="$ROOT/lib/behavior_lake/log4j2.properties"
LOG_ARGS=(--files "$LOG4J"
          --conf "spark.executor.extraJavaOptions=-Dlog4j2.configurationFile=log4j2.properties")
if [ "$DEPLOY_MODE" = client ]; then
  LOG_ARGS+=(--driver-java-options "-Dlog4j2.configurationFile=$LOG4J")
else
  LOG_ARGS+=(--conf "spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=log4j2.properties")
fi

set -x
exec "$SPARK_SUBMIT" \
  --master "$MASTER" --deploy-mode "$DEPLOY_MODE" \
  --name "behavior-lake-$JOB" \
  "${JAR_ARGS[@]}" \
  --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
  --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
  --conf spark.sql.session.timeZone=UTC \
  --py-files "$WHEEL" \
  "${CONF_ARGS[@]}" \
  "${PY_ARGS[@]}" \
  "${LOG_ARGS[@]}" \
  ${EXTRA_SUBMIT_ARGS:-} \
  "$ROOT/jobs/$JOB.py" --env cluster "$@"
