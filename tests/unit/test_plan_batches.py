"""Batch planning after crashes: one crash costs two batches, a file that keeps failing
ends up alone at its last allowed attempt."""

from __future__ import annotations

from behavior_lake.bronze.ingest import LandingFile, Pending, plan_batches


def files(n: int, prefix: str = "f") -> list[LandingFile]:
    return [LandingFile(f"file:///l/{prefix}{i:03d}", f"2026-02-01/00/{prefix}{i:03d}.jsonl", 1, 0)
            for i in range(n)]  # fmt: skip


def sizes(batches) -> list[int]:
    return [len(b) for b in batches]


def test_fresh_files_in_batches_of_max_files() -> None:
    assert sizes(plan_batches(files(10), 4)) == [4, 4, 2]
    assert sizes(plan_batches(files(10), 0)) == [10]
    assert plan_batches([], 0) == []


def test_retried_files_are_bisected_then_alone() -> None:
    new, retried = files(5, "n"), files(190, "r")
    once = {f.rel: Pending(1, ("b1",)) for f in retried}
    assert sizes(plan_batches(new + retried, 0, once, max_attempts=3)) == [5, 95, 95]
    twice = {f.rel: Pending(2, ("b1", "b2")) for f in retried[:3]}
    assert sizes(plan_batches(retried[:3], 0, twice, max_attempts=3)) == [1, 1, 1]
    # with more attempts allowed, the second failure splits in four first
    assert sizes(plan_batches(retried[:8], 0, {f.rel: Pending(2, ()) for f in retried[:8]},
                              max_attempts=5)) == [2, 2, 2, 2]  # fmt: skip
    # bisected groups never exceed max_files
    assert max(sizes(plan_batches(retried, 50, once, max_attempts=3))) == 50
