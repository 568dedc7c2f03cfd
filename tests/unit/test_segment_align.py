"""Stable segment ids: clusters matched to the champion's segments by centroid z-scores."""

from __future__ import annotations

import itertools

import pytest

from behavior_lake.ml.segment_align import align, match, profile_shift

FEATS = ["a", "b"]


def prof(cluster: int, a: float, b: float, size: int = 10) -> dict:
    return {"segment_id": cluster, "size": size, "z": {"a": a, "b": b}}


def champ(sid: int, name: str, a: float, b: float) -> dict:
    return {"segment_id": sid, "segment_name": name, "z": {"a": a, "b": b}}


CHAMPION = [
    champ(0, "buyers", 1.0, 1.0),
    champ(1, "browsers", -1.0, 0.5),
    champ(2, "idle", 0.0, -1.5),
]


def test_match_is_the_cheapest_assignment() -> None:
    cost = [[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]]
    got = match(cost)
    best = min(
        itertools.permutations(range(3)), key=lambda p: sum(cost[r][c] for r, c in enumerate(p))
    )
    assert got == dict(enumerate(best)) == {0: 1, 1: 0, 2: 2}
    # rectangular: 2 rows, 3 columns -> 2 pairs, distinct columns
    assert match([[0.0, 9.0, 9.0], [9.0, 9.0, 0.0]]) == {0: 0, 1: 2}
    assert match([[0.0], [1.0]]) == {0: 0}


def test_a_permuted_refit_keeps_ids_and_names() -> None:
    # the same three centroids, numbered differently by the new fit
    new = [prof(0, 0.05, -1.45), prof(1, 1.0, 0.9), prof(2, -1.1, 0.5)]
    derived = {0: "x", 1: "y", 2: "z"}
    al = align(new, derived, CHAMPION, FEATS, rename_shift=0.5, champion_version="3")
    assert al.ids == {0: 2, 1: 0, 2: 1}
    assert al.names == {0: "buyers", 1: "browsers", 2: "idle"}
    assert al.changes == []
    assert all(s is not None and s < 0.1 for s in al.shifts.values())


def test_a_moved_segment_is_renamed_and_logged() -> None:
    new = [prof(0, 1.0, 1.0), prof(1, -1.0, 0.5), prof(2, 0.0, 1.0)]  # idle moved by 2.5 in b
    al = align(new, {0: "x", 1: "y", 2: "now active"}, CHAMPION, FEATS, rename_shift=0.5)
    assert al.ids == {0: 0, 1: 1, 2: 2}
    assert al.names[2] == "now active" and al.names[0] == "buyers"
    assert len(al.changes) == 1 and "'idle' -> 'now active'" in al.changes[0]
    assert al.shifts[2] == pytest.approx(profile_shift({"b": 1.0}, {"b": -1.5}, FEATS))


def test_new_and_vanished_segments() -> None:
    more = [*[prof(i, *c) for i, c in enumerate([(1, 1), (-1, 0.5), (0, -1.5)])], prof(3, 3.0, 3.0)]
    al = align(more, {0: "a", 1: "b", 2: "c", 3: "whales"}, CHAMPION, FEATS, rename_shift=0.5)
    assert al.ids[3] == 3 and al.names[3] == "whales" and al.shifts[3] is None
    assert any("is new" in c for c in al.changes)
    fewer = [prof(0, 1.0, 1.0), prof(1, -1.0, 0.5)]
    al = align(fewer, {0: "a", 1: "b"}, CHAMPION, FEATS, rename_shift=0.5)
    assert set(al.ids.values()) == {0, 1}
    assert any("[2]" in c and "no counterpart" in c for c in al.changes)


def test_without_a_champion_clusters_keep_their_numbers() -> None:
    new = [prof(0, 1.0, 1.0), prof(1, -1.0, 0.5)]
    al = align(new, {0: "a", 1: "b"}, None, FEATS, rename_shift=0.5)
    assert al.ids == {0: 0, 1: 1} and al.names == {0: "a", 1: "b"}


def test_taken_names_get_a_suffix() -> None:
    new = [prof(0, 1.0, 1.0), prof(1, -1.0, 0.5), prof(2, 0.0, 2.0)]
    al = align(new, {0: "x", 1: "y", 2: "buyers"}, CHAMPION, FEATS, rename_shift=0.5)
    assert sorted(al.names.values()) == ["browsers", "buyers", "buyers (2)"]
