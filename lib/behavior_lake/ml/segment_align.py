"""Stable segment ids: a retrained segmentation's clusters mapped to the champion's.

A clustering numbers its clusters arbitrarily: refit on the same persons with another
seed (or on the next snapshot) and cluster 0 may be what was cluster 2. Published segment
ids and names must keep their meaning, so each retrain is aligned with the current
champion's published profile: clusters are matched one to one by the distance between
their centroid z-scores (the assignment with the smallest total distance), a matched
cluster takes the champion segment's id, and its name too while its profile moved less
than `segments.rename_shift`; beyond that it is renamed from its new profile and the
change is logged. Clusters without a counterpart get new ids (never reusing an old one).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

BRUTE_FORCE_MAX = 8  # k! assignments at most 40,320: exact; larger k: greedy


def profile_shift(a: Mapping[str, float], b: Mapping[str, float], features: Sequence[str]) -> float:
    """Root mean square difference of two centroids' z-scores over the features."""
    if not features:
        return 0.0
    sq = [(float(a.get(f) or 0.0) - float(b.get(f) or 0.0)) ** 2 for f in features]
    return math.sqrt(sum(sq) / len(sq))


def match(cost: Sequence[Sequence[float]]) -> dict[int, int]:
    """Row -> column pairs of a rectangular cost matrix with the smallest total cost
    (min(rows, columns) pairs); exact up to BRUTE_FORCE_MAX, then greedy."""
    rows, cols = len(cost), len(cost[0]) if cost else 0
    if not rows or not cols:
        return {}
    if min(rows, cols) <= BRUTE_FORCE_MAX and max(rows, cols) <= BRUTE_FORCE_MAX:
        best: tuple[float, dict[int, int]] = (math.inf, {})
        if rows <= cols:
            for perm in itertools.permutations(range(cols), rows):
                total = sum(cost[r][c] for r, c in enumerate(perm))
                if total < best[0]:
                    best = (total, dict(enumerate(perm)))
        else:
            for perm in itertools.permutations(range(rows), cols):
                total = sum(cost[r][c] for c, r in enumerate(perm))
                if total < best[0]:
                    best = (total, {r: c for c, r in enumerate(perm)})
        return best[1]
    pairs = sorted((cost[r][c], r, c) for r in range(rows) for c in range(cols))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, r, c in pairs:
        if r not in out and c not in used:
            out[r] = c
            used.add(c)
    return out


@dataclass
class Alignment:
    ids: dict[int, int]  # model cluster -> published segment id
    names: dict[int, str]  # published segment id -> name
    shifts: dict[int, float | None] = field(default_factory=dict)  # id -> shift (None: new)
    changes: list[str] = field(default_factory=list)  # renames and new segments, for the log
    champion_version: str | None = None

    def as_json(self) -> dict:
        return {
            "champion_version": self.champion_version,
            "cluster_to_segment": {str(k): v for k, v in sorted(self.ids.items())},
            "names": {str(k): v for k, v in sorted(self.names.items())},
            "profile_shift": {str(k): v for k, v in sorted(self.shifts.items())},
            "changes": self.changes,
        }


def align(
    profiles: Sequence[dict],
    derived: Mapping[int, str],
    champion: Sequence[dict] | None,
    features: Sequence[str],
    rename_shift: float,
    champion_version: str | None = None,
) -> Alignment:
    """Map `profiles` (one per model cluster: segment_id = the cluster, z = centroid
    z-scores) onto the champion's published profile (segment_id, segment_name, z).
    `derived` = the names derived from the new profiles (by cluster). Without a
    champion the clusters keep their numbers and derived names."""
    if not champion:
        ids = {p["segment_id"]: p["segment_id"] for p in profiles}
        return Alignment(
            ids, {ids[c]: n for c, n in derived.items()}, {i: None for i in ids.values()}
        )
    clusters = [p["segment_id"] for p in profiles]
    old = list(champion)
    cost = [[profile_shift(p["z"], o["z"], features) for o in old] for p in profiles]
    pairs = match(cost)
    al = Alignment({}, {}, champion_version=champion_version)
    next_id = max(int(o["segment_id"]) for o in old) + 1
    for r, cluster in enumerate(clusters):
        if r in pairs:
            o = old[pairs[r]]
            sid, shift = int(o["segment_id"]), cost[r][pairs[r]]
            al.ids[cluster], al.shifts[sid] = sid, shift
            if shift <= rename_shift:
                al.names[sid] = o["segment_name"]
            else:
                al.names[sid] = derived[cluster]
                al.changes.append(
                    f"segment {sid} {o['segment_name']!r} -> {derived[cluster]!r}: profile moved "
                    f"{shift:.2f} z (> segments.rename_shift {rename_shift})"
                )
        else:
            al.ids[cluster], al.shifts[next_id] = next_id, None
            al.names[next_id] = derived[cluster]
            al.changes.append(f"segment {next_id} {derived[cluster]!r} is new (no counterpart)")
            next_id += 1
    gone = sorted({int(o["segment_id"]) for o in old} - set(al.ids.values()))
    if gone:
        al.changes.append(f"segment(s) {gone} of the champion have no counterpart")
    al.names = _unique(al.names)
    return al


def _unique(names: dict[int, str]) -> dict[int, str]:
    seen: dict[str, int] = {}
    out = {}
    for sid in sorted(names):
        base = names[sid]
        seen[base] = seen.get(base, 0) + 1
        out[sid] = base if seen[base] == 1 else f"{base} ({seen[base]})"
    return out
