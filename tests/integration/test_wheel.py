"""The wheel is what a cluster installs: every job is a console entry point, conf ships
inside it, and `--help` works in a clean venv without pyspark."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (whl,) = out.glob("behavior_lake-*.whl")
    return whl


def test_the_wheel_holds_conf_and_help_texts(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "behavior_lake/conf/base/pipeline.yml" in names
    assert "behavior_lake/conf/databricks/lake.yml" in names
    assert "behavior_lake/conf/base/taxonomy/ecommerce.yml" in names
    assert "behavior_lake/entry_help.json" in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]  # fmt: skip
    assert not [r for r in requires if "pyspark" in r or "delta" in r or "mlflow" in r]


def test_every_entry_point_helps_without_pyspark(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*pip, "--no-index", str(wheel)], check=True, timeout=300)
    clean = subprocess.run([str(venv / "bin" / "python"), "-c", "import pyspark"], check=False)
    assert clean.returncode != 0  # the venv really has no Spark
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(scripts) >= 14
    for script in scripts:
        done = subprocess.run(
            [str(venv / "bin" / script), "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (script, done.stderr)
        assert done.stdout.startswith("usage: "), script
    # positive control: running a job needs Spark, and says so in one line
    done = subprocess.run(
        [str(venv / "bin" / "behavior-lake-bronze-ingest")], capture_output=True, text=True
    )
    assert done.returncode == 3 and "pyspark is not installed" in done.stderr
