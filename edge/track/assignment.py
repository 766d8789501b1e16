"""Association maths for the tracker: optimal assignment and the similarity matrices.

Assignments are optimal (Hungarian, implemented here: no scipy/lap in the edge runtime) and are
solved per connected component of the valid pairs, so the common case (one track, one
detection) needs no Hungarian at all.
"""

from __future__ import annotations

import numpy as np


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one assignment of rows to columns (Hungarian, O(n^2 m)).

    Rectangular matrices are fine: min(n, m) pairs are returned. Costs must be finite; callers
    gate pairs afterwards.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"linear_assignment: expected a 2-D cost matrix, got {cost.shape}")
    if cost.size == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    a = cost.T if transposed else cost
    n, m = a.shape
    # potentials-based shortest augmenting path (e-maxx), 1-based with a virtual column 0
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row assigned to column j
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = a[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            masked = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j]]
    if transposed:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


def match_pairs(sim: np.ndarray, min_sim: float) -> list[tuple[int, int]]:
    """Most pairs with ``sim >= min_sim``, then the highest total similarity among them.

    Solved per connected component of the valid pairs: most components are a single track and
    a single detection, which needs no Hungarian at all.
    """
    valid = sim >= min_sim
    if not valid.any():
        return []
    n, m = sim.shape
    parent = list(range(n + m))  # union-find over rows 0..n-1 and columns n..n+m-1

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rows, cols = np.nonzero(valid)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        parent[find(r)] = find(n + c)
    comps: dict[int, tuple[list[int], list[int]]] = {}
    for r in sorted(set(rows.tolist())):
        comps.setdefault(find(r), ([], []))[0].append(r)
    for c in sorted(set(cols.tolist())):
        comps.setdefault(find(n + c), ([], []))[1].append(c)
    pairs: list[tuple[int, int]] = []
    for rs, cs in comps.values():
        if len(rs) == 1 and len(cs) == 1:
            pairs.append((rs[0], cs[0]))
            continue
        if len(rs) == 1 or len(cs) == 1:
            sub = sim[np.ix_(rs, cs)]
            k = int(np.argmax(sub))
            pairs.append((rs[k // len(cs)], cs[k % len(cs)]))
            continue
        sub = np.where(valid[np.ix_(rs, cs)], sim[np.ix_(rs, cs)], -1e6)  # invalid: last resort
        pairs += [(rs[i], cs[j]) for i, j in linear_assignment(-sub) if valid[rs[i], cs[j]]]
    return sorted(pairs)


def buffered(boxes: np.ndarray, b: float) -> np.ndarray:
    if b == 0:
        return boxes
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + np.hstack([-w, -h, w, h]) * b


def centre_similarity(pred: np.ndarray, dets: np.ndarray, gate: float) -> np.ndarray:
    """1 - distance / (gate * predicted diagonal), 0 outside the gate or when sizes differ >2x."""
    pc = (pred[:, :2] + pred[:, 2:]) / 2
    dc = (dets[:, :2] + dets[:, 2:]) / 2
    pwh = pred[:, 2:] - pred[:, :2]
    dwh = dets[:, 2:] - dets[:, :2]
    diag = np.hypot(pwh[:, 0], pwh[:, 1])[:, None]
    dist = np.hypot(*(pc[:, None, :] - dc[None, :, :]).transpose(2, 0, 1))
    ratio = np.sqrt(pwh[:, None, 0] * pwh[:, None, 1] / (dwh[None, :, 0] * dwh[None, :, 1]))
    sim = 1 - dist / (gate * np.maximum(diag, 1e-6))
    sim[(ratio > 2) | (ratio < 0.5)] = 0
    return sim.clip(0)
