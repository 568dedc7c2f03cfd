"""Logging set-up: text or JSON lines, with run_id, job and pipeline task on every line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_CONTEXT: dict[str, str] = {"run_id": "-", "job": "-", "task": "-"}


def set_context(**values: str) -> None:
    _CONTEXT.update(values)


def get_context() -> dict[str, str]:
    return dict(_CONTEXT)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.items():
            setattr(record, key, value)
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", "-"),
            "job": getattr(record, "job", "-"),
            "task": getattr(record, "task", "-"),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s [%(job)s %(run_id)s] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("py4j", "pyspark", "urllib3", "botocore", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
