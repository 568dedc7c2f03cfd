"""The README and docs/ parts generated from the job registry, the catalog and the
settings classes are current; the README stays short."""

from __future__ import annotations

from pathlib import Path

import pytest

from behavior_lake import docgen

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in docgen.outputs(ROOT).items()
        if path.read_text() != text
    ]
    assert stale == [], "run `make docs`"


def test_generation_replaces_blocks_and_needs_them() -> None:
    begin, end = docgen.BEGIN.format(name="jobs"), docgen.END.format(name="jobs")
    old = f"intro\n{begin}\n| stale |\n{end}\noutro\n"
    new = docgen.with_blocks(old, {"jobs": docgen.jobs_block()})
    assert "| stale |" not in new and "| `silver_events` |" in new
    assert new.startswith("intro\n") and new.endswith("outro\n")
    with pytest.raises(ValueError, match="no generated block 'tables'"):
        docgen.with_blocks(old, {"tables": "x"})


def test_readme_is_at_most_15_kb() -> None:
    size = (ROOT / "README.md").stat().st_size
    assert 5_000 < size <= 15_000, size


def test_config_reference_lists_every_key_with_its_default() -> None:
    text = (ROOT / "docs" / "config.md").read_text()
    for key in docgen.settings_keys():
        assert f"| `{key.key}` |" in text
    assert "| `silver.late_allowed_days` | int | `3` |" in text
    assert "| `spark.shuffle_partitions` | int | `4` | cluster: `200`" in text
