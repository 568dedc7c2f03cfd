"""The import layering contract (pyproject.toml, `make lint`) holds, and would catch an
upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(lib: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(lib))
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=lib,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_layers_hold_and_an_upward_import_breaks_them(tmp_path: Path) -> None:
    kept = lint(ROOT / "lib")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "1 kept, 0 broken" in kept.stdout
    # positive control: bronze importing gold (a layer above it) breaks the contract
    copy = tmp_path / "lib"
    shutil.copytree(ROOT / "lib" / "behavior_lake", copy / "behavior_lake")
    parse = copy / "behavior_lake" / "bronze" / "parse.py"
    parse.write_text(parse.read_text() + "\nfrom behavior_lake.gold import kpis  # noqa\n")
    broken = lint(copy)
    assert broken.returncode != 0
    assert "behavior_lake.bronze.parse -> behavior_lake.gold.kpis" in broken.stdout
