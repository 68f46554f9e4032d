"""Fragments from clicks by isolating minimum cuts: the cheapest surface between the clicks.

A watershed floods level by level, so one faint patch of a fracture line lets a fragment's
flood through, and a small fragment (the wedge of a comminuted fracture) floods its
neighbours before their own floods, held back by the texture of marrow, arrive. A minimum
cut weighs the whole surface instead: its cost is the sum over the voxel faces it crosses of
``area x exp(-beta x relief)``, so a cut along a small, fairly bright fracture surface costs
less than one through a large patch of marrow texture.

For several fragments the multiway cut is NP-hard; the isolating cuts (each click group
against all the others, one s-t minimum cut each; Dahlhaus et al., SIAM J. Comput. 1994)
approximate it within a factor 2 - 2/k. Each voxel on exactly one group's side takes that
group; voxels on several sides take the label the caller gives (the watershed's). Voxels on
no side go to the group whose own side is smallest: a small fragment's isolating cut shrinks
round its click (cutting round a small marker is cheap), while the larger fragments' cuts
still bound it, so what none of them claims is the small one's (the wedge of a comminuted
fracture; on 78 training fractures 0.821 -> 0.833, comminuted 0.318 -> 0.414, where the
watershed's label had given it back to the neighbours it flooded). With two groups one cut
decides every voxel. The cuts run on the bone's
6-neighbour graph with scipy's Dinic maximum flow (integer capacities, ``SCALE`` per unit).
"""

from __future__ import annotations

import numpy as np

from mskai.fracture.faces import face_pairs

SCALE = 1000  # capacity units per unit of face weight (scipy's maximum flow takes integers)


def supported(cut: np.ndarray, flood: np.ndarray, relief: np.ndarray, inner: np.ndarray,
              groups: int, min_share: float, min_voxels: float, evidence_ratio: float) -> bool:
    """Whether to keep the cuts rather than the flood they started from.

    Not where they shrank a fragment onto its click (less than ``min_share`` of its flood or
    less than ``min_voxels``: a minimum cut's known bias, a small marker being cheaper to cut
    round than a bone's cross-section), nor where their boundary lies on weaker relief, per
    voxel face, than the flood's (below ``evidence_ratio`` x its mean): then the cuts took a
    narrow neck of the bone for its small area, not a line. The second test is weak: on the
    case it was added for (a hairline at 3 mm voxels, two clicks) the two means differ by
    4 %, and it drops good cuts too, so the split asks it only between two clicks
    (``SplitParams.cut_evidence_max_clicks``; ``evidence_ratio`` 0 skips it).
    """
    for n in range(1, groups + 1):
        kept = np.count_nonzero(cut == n)
        if kept < min_share * np.count_nonzero(flood == n) or kept < min_voxels:
            return False
    if evidence_ratio <= 0:
        return True
    return boundary_level(cut, relief, inner, groups) >= evidence_ratio * boundary_level(
        flood, relief, inner, groups)


def boundary_level(labels: np.ndarray, relief: np.ndarray, inner: np.ndarray,
                   groups: int) -> float:
    """Mean relief (the higher of a face's two voxels) over the faces between two of the
    labels 1..``groups``, both voxels ``inner``; 0 where there are none."""
    total, count = 0.0, 0
    for _, ((a, b), (ra, rb), (ia, ib)) in face_pairs(labels, relief, inner):
        face = (a != b) & (a > 0) & (b > 0) & (a <= groups) & (b <= groups) & ia & ib
        total += float(np.maximum(ra, rb)[face].sum())
        count += int(np.count_nonzero(face))
    return total / count if count else 0.0


def cut_labels(relief: np.ndarray, mask: np.ndarray, markers: np.ndarray,
               spacing_kji: tuple[float, ...], beta: float,
               fallback: np.ndarray) -> np.ndarray:
    """Labels 1..n of ``markers`` grown by isolating minimum cuts inside ``mask`` (module
    doc): voxels on several groups' sides take ``fallback``'s label, voxels on none (three
    groups or more) the group whose own side is smallest."""
    n = int(markers.max())
    if n < 2:
        return fallback
    graph = _MaskGraph(relief, mask, spacing_kji, beta)
    groups = [markers[mask] == k for k in range(1, n + 1)]
    if not all(g.any() for g in groups):
        return fallback
    sides = [graph.source_side(groups[0], groups[1])] if n == 2 else [
        graph.source_side(g, np.logical_or.reduce([h for h in groups if h is not g]))
        for g in groups]
    if n == 2:
        sides.append(~sides[0])
    count = np.sum(sides, axis=0)
    voxel_labels = np.where(count == 1, np.argmax(sides, axis=0) + 1, fallback[mask])
    if n > 2:  # on no click's side: the click whose own cut shrank most (module doc)
        voxel_labels[count == 0] = int(np.argmin([side.sum() for side in sides])) + 1
    out = np.zeros(mask.shape, dtype=np.int32)
    out[mask] = voxel_labels
    return out


class _MaskGraph:
    """The mask's voxels and their face neighbours, with capacities from the relief."""

    def __init__(self, relief: np.ndarray, mask: np.ndarray, spacing_kji: tuple[float, ...],
                 beta: float) -> None:
        index = np.full(mask.shape, -1, dtype=np.int64)
        self.size = int(np.count_nonzero(mask))
        index[mask] = np.arange(self.size)
        spacing = np.asarray(spacing_kji, dtype=float)
        tails, heads, caps = [], [], []
        for axis, ((a, b), (ra, rb)) in face_pairs(index, relief):
            both = (a >= 0) & (b >= 0)
            face = np.prod(np.delete(spacing, axis)) / spacing[axis]
            level = np.maximum(ra, rb)[both]
            cap = np.maximum(np.rint(SCALE * face * np.exp(-beta * level)), 1).astype(np.int32)
            tails += [a[both], b[both]]
            heads += [b[both], a[both]]
            caps += [cap, cap]
        self.tails = np.concatenate(tails)
        self.heads = np.concatenate(heads)
        self.caps = np.concatenate(caps)

    def source_side(self, source: np.ndarray, sink: np.ndarray) -> np.ndarray:
        """Boolean per mask voxel: on the source's side of a minimum cut between the voxels
        ``source`` and ``sink`` (the voxels the residual graph still reaches from it)."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import breadth_first_order, maximum_flow

        s, t = self.size, self.size + 1
        infinite = np.iinfo(np.int32).max // 4
        src, snk = np.flatnonzero(source), np.flatnonzero(sink)
        tails = np.concatenate([self.tails, np.full(len(src), s), snk])
        heads = np.concatenate([self.heads, src, np.full(len(snk), t)])
        caps = np.concatenate([self.caps, np.full(len(src) + len(snk), infinite, np.int32)])
        graph = csr_matrix((caps, (tails, heads)), shape=(self.size + 2,) * 2)
        flow = maximum_flow(graph, s, t, method="dinic").flow
        residual = (graph - flow).tocsr()
        residual.data = (residual.data > 0).astype(np.int8)
        residual.eliminate_zeros()
        reached = breadth_first_order(residual, s, directed=True, return_predecessors=False)
        side = np.zeros(self.size + 2, dtype=bool)
        side[reached] = True
        return side[:self.size]
