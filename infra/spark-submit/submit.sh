#!/usr/bin/env bash
# Submit one behavior-lake job to a Spark cluster (YARN, Kubernetes or standalone).
#
#   infra/spark-submit/submit.sh JOB [job args...]
#   e.g. MASTER=yarn infra/spark-submit/submit.sh bronze_ingest --conf bronze.max_files_per_batch=500
#
# Builds the wheel, ships it with --py-files and conf/ as an archive, adds the Delta
# package and session extensions, and runs jobs/JOB.py with --env cluster.
# Environment: MASTER (default yarn), DEPLOY_MODE (default client), SPARK_SUBMIT,
# DELTA_PACKAGE, EXTRA_SUBMIT_ARGS, and the job's own secrets
# (BEHAVIOR_LAKE_ROOT, BEHAVIOR_LAKE_LANDING, BEHAVIOR_LAKE_PSEUDONYM_KEY, BEHAVIOR_LAKE_ENCRYPTION_KEY).
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
SPARK_SUBMIT=${SPARK_SUBMIT:-spark-submit}
DELTA_PACKAGE=${DELTA_PACKAGE:-io.delta:delta-spark_4.2_2.13:4.4.1}
PYTHON=${PYTHON:-python3}

mkdir -p "$ROOT/dist"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$ROOT/dist" "$ROOT"
WHEEL=$(ls -t "$ROOT"/dist/behavior_lake-*.whl | head -1)
(cd "$ROOT" && rm -f dist/conf.zip && "$PYTHON" -m zipfile -c dist/conf.zip conf/ >/dev/null)

# In cluster deploy mode the driver runs remotely: conf/ arrives as an archive.
CONF_ARGS=(--archives "$ROOT/dist/conf.zip#confarchive"
           --conf spark.yarn.appMasterEnv.BEHAVIOR_LAKE_CONF=confarchive/conf
           --conf spark.kubernetes.driverEnv.BEHAVIOR_LAKE_CONF=confarchive/conf)
if [ "$DEPLOY_MODE" = client ]; then
  export BEHAVIOR_LAKE_CONF="$ROOT/conf"
fi

set -x
exec "$SPARK_SUBMIT" \
  --master "$MASTER" --deploy-mode "$DEPLOY_MODE" \
  --name "behavior-lake-$JOB" \
  --packages "$DELTA_PACKAGE" \
  --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
  --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
  --conf spark.sql.session.timeZone=UTC \
  --py-files "$WHEEL" \
  "${CONF_ARGS[@]}" \
  ${EXTRA_SUBMIT_ARGS:-} \
  "$ROOT/jobs/$JOB.py" --env cluster "$@"
