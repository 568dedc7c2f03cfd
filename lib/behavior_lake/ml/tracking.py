"""MLflow set-up from config, model logging/loading and registry aliases."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from behavior_lake.config import MlflowSettings

log = logging.getLogger(__name__)

# Written into every logged model so MLflow never has to infer the environment
# (inference imports the whole stack and is slow).
PIP_REQUIREMENTS = ["pyspark==4.2.0", "mlflow==3.17.2"]


class ModelNotFoundError(LookupError):
    """No registered model version carries the requested alias."""


def _local_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///"))
    if "://" not in uri:
        return Path(uri)
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return None


def configure(cfg: MlflowSettings, experiment: str) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    db = _local_path(cfg.tracking_uri)
    if db is not None and cfg.tracking_uri.startswith("sqlite:"):
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(cfg.registry_uri or cfg.tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        art = _local_path(cfg.artifact_root)
        location = (
            Path(art).resolve().joinpath(experiment).as_uri()
            if art is not None
            else f"{cfg.artifact_root.rstrip('/')}/{experiment}"
        )
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def log_spark_model(
    model: Any, registered_name: str, example: Any = None, output: str | None = None
) -> Any:
    """Log a fitted PipelineModel under `model` and register a new version; returns it.

    With `example` (a Spark frame of the model's input columns) and `output` (the column
    it predicts), the model gets a signature and an input example: Unity Catalog's
    registry requires a signature."""
    import mlflow
    import mlflow.spark

    extra: dict[str, Any] = {}
    if example is not None and output is not None:
        from mlflow.models import infer_signature

        sample = example.limit(5)
        inputs = sample.toPandas()
        predicted = model.transform(sample).select(output).toPandas()
        # count features are declared double: a request with a missing count (the model
        # imputes it) must pass the signature, which an integer column would refuse
        ints = list(inputs.select_dtypes("integer").columns)
        inputs[ints] = inputs[ints].astype("float64")
        with warnings.catch_warnings():
            # the output (a segment id) is an integer and never missing
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            signature = infer_signature(inputs, predicted)
        extra = {"signature": signature, "input_example": inputs}
    info = mlflow.spark.log_model(
        model,
        artifact_path="model",
        registered_model_name=registered_name,
        pip_requirements=PIP_REQUIREMENTS,
        **extra,
    )
    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    versions = client.search_model_versions(f"name = '{registered_name}' and run_id = '{run_id}'")
    if not versions:  # pragma: no cover - registration is synchronous on local stores
        raise RuntimeError(f"model {registered_name} from run {run_id} was not registered")
    del info
    return max(versions, key=lambda v: int(v.version))


def set_alias(name: str, alias: str, version: str | int) -> None:
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))


def version_by_alias(name: str, alias: str) -> Any:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no version of registered model {name!r} has the alias {alias!r} "
            f"(train one first; the registry is at {mlflow.get_registry_uri()})"
        ) from exc


def load_spark_model(name: str, version: str | int) -> Any:
    import mlflow.spark

    return mlflow.spark.load_model(f"models:/{name}/{version}")


def download_json(run_id: str, path: str) -> Any:
    import json

    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    return json.loads(Path(local).read_text())


def log_table_inputs(lake: Any, inputs: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Record the lake tables a run read as MLflow datasets: the Delta table (by name
    under a metastore, else by path) at the version read, with `context` (training,
    holdout, labels) and tags such as the snapshot dates used."""
    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    for table, context, tags in inputs:
        version = lake.version(table)
        fqn = lake.table_name(table)
        if fqn:
            source = DeltaDatasetSource(delta_table_name=fqn, delta_table_version=version)
        else:
            source = DeltaDatasetSource(path=lake.path(table), delta_table_version=version)
        # the digest tells the slices of one table version apart (MLflow records one
        # input per digest: training and holdout cutoffs would otherwise merge)
        key = f"{table}@{version}:{sorted(tags.items())}".encode()
        mlflow.log_input(
            MetaDataset(source, name=table, digest=hashlib.sha256(key).hexdigest()[:8]),
            context=context,
            tags={
                "table": table,
                "delta_version": str(version),
                **{k: str(v) for k, v in tags.items()},
            },
        )


def describe_model(name: str, version: str | int, model_text: str, version_text: str) -> None:
    """Registered-model and model-version descriptions (shown in the MLflow UI)."""
    import mlflow

    client = mlflow.MlflowClient()
    client.update_registered_model(name, description=model_text)
    client.update_model_version(name, str(version), description=version_text)


def unique_run_name(prefix: str) -> str:
    """`<prefix>-<UTC time to the second>`: retrains on the same data stay apart."""
    from datetime import UTC, datetime

    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
