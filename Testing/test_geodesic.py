"""Geodesic distances of the click methods: the same numbers as scikit-image's solver, faster.

Truth is ``skimage.graph.MCP_Geometric`` started from every seed voxel, as the classic
method called it before; the speed-ups (scipy's Dijkstra on the grid's graph for working
grids, surface seeds only for larger ones) must give the same distances bit for bit, walls
of infinite cost included.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from skimage.graph import MCP_Geometric

import mskai.interactive.geodesic as geodesic
from mskai.interactive.geodesic import geodesic_distance
from mskai.interactive.region import SharedSolve, background_distance

SPACING = (3.0, 1.5, 1.0)


def _cost_and_seeds() -> tuple[np.ndarray, np.ndarray]:
    """A noisy cost with a wall of high cost, and seeds as the method makes them: the grid's
    border, a solid ball (most of its voxels inside the seed set) and a lone voxel."""
    rng = np.random.default_rng(3)
    cost = 1.0 + rng.random((18, 30, 34))
    cost[:, 14, 5:30] += 40.0
    seeds = np.zeros(cost.shape, dtype=bool)
    seeds[[0, -1], :, :] = seeds[:, [0, -1], :] = seeds[:, :, [0, -1]] = True
    k, j, i = np.indices(cost.shape)
    seeds |= (k - 9) ** 2 + ((j - 22) / 2) ** 2 + ((i - 20) / 3) ** 2 <= 16
    seeds[9, 6, 8] = True
    return cost, seeds


def _truth(cost: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    return MCP_Geometric(cost, sampling=SPACING).find_costs(np.argwhere(seeds))[0]


def test_the_graph_solver_gives_scikit_images_distances() -> None:
    cost, seeds = _cost_and_seeds()
    assert cost.size <= geodesic.MAX_GRAPH_VOXELS
    assert np.array_equal(geodesic_distance(cost, seeds, SPACING), _truth(cost, seeds))


def test_walls_of_infinite_cost_stop_both_solvers_alike(monkeypatch) -> None:
    """The multi-label fronts mark what they may not cross with an infinite cost."""
    cost, seeds = _cost_and_seeds()
    cost[:, 14, :] = np.inf  # a wall across the whole grid: the far side is unreachable
    seeds[:, 15:, :] = False
    truth = _truth(cost, seeds)
    assert np.isinf(truth[:, 15:, :]).all()
    assert np.array_equal(geodesic_distance(cost, seeds, SPACING), truth)
    monkeypatch.setattr(geodesic, "MAX_GRAPH_VOXELS", 0)
    assert np.array_equal(geodesic_distance(cost, seeds, SPACING), truth)


def test_on_a_large_grid_surface_seeds_give_the_distances_of_all_seeds(monkeypatch) -> None:
    monkeypatch.setattr(geodesic, "MAX_GRAPH_VOXELS", 0)  # this grid counts as large
    cost, seeds = _cost_and_seeds()
    assert np.array_equal(geodesic_distance(cost, seeds, SPACING), _truth(cost, seeds))


def test_a_solve_within_a_distance_is_exact_there_and_one_step_beyond() -> None:
    """What a competition with another front reads: the distance up to ``within`` and at
    every 26-neighbour of those voxels. The solve stops there, so farther voxels may be inf."""
    from scipy import ndimage

    cost = 1.0 + np.random.default_rng(4).random((18, 30, 34))
    seeds = np.zeros(cost.shape, dtype=bool)
    seeds[9, 6, 8] = True
    truth = _truth(cost, seeds)
    within = float(np.percentile(truth, 5))
    found = geodesic_distance(cost, seeds, SPACING, within=within)
    read = ndimage.binary_dilation(truth <= within, structure=np.ones((3, 3, 3), dtype=bool))
    assert np.array_equal(found[read], truth[read])
    beyond = found[~read]
    assert np.all(np.isinf(beyond) | (beyond == truth[~read]))
    assert np.isinf(found).mean() > 0.5  # most of the grid was never visited


def test_the_tumour_map_is_exact_wherever_thresholding_reads_it() -> None:
    """The click method solves the tumour front only as far as the farthest background
    distance: the mask on the crop is the one the full map gives, and so is the map at every
    voxel above 0.5 or next to one."""
    from scipy import ndimage

    from mskai.interactive.region import geodesic_probability, prepare, to_crop_mask

    rng = np.random.default_rng(5)
    k, j, i = np.mgrid[0:24, 0:64, 0:64].astype(np.float32)
    r = np.sqrt(((i - 30) * 0.9) ** 2 + ((j - 34) * 0.9) ** 2 + ((k - 12) * 3.0) ** 2)
    grid = prepare(np.where(r < 18, 60.0, 20.0) + rng.normal(0, 15, r.shape), (3.0, 0.9, 0.9))
    pos, neg = grid.to_work(np.array([[12, 34, 30]])), np.zeros((0, 3), dtype=int)
    fast = geodesic_probability(grid, pos, neg)
    full = geodesic_probability(grid, pos, neg, full_map=True)
    read = ndimage.binary_dilation(full > 0.5, structure=np.ones((3, 3, 3), dtype=bool))
    assert read.any() and not read.all()
    assert np.array_equal(fast[read], full[read])
    assert np.array_equal(to_crop_mask(grid, fast), to_crop_mask(grid, full))
    assert np.any(fast[~read] != full[~read])   # elsewhere the fast map was not solved


def test_a_run_with_the_same_background_reuses_its_distance() -> None:
    cost, seeds = _cost_and_seeds()
    shared = SharedSolve()
    first = background_distance(cost, seeds, SPACING, shared)
    assert background_distance(cost.copy(), seeds.copy(), SPACING, shared) is first
    fewer = seeds.copy()
    fewer[9, 6, 8] = False  # the mask-seeded run dropped a background seed inside the mask
    again = background_distance(cost, fewer, SPACING, shared)
    assert again is not first
    assert np.array_equal(again, geodesic_distance(cost, fewer, SPACING))


class _HeldSolve:
    """``geodesic_distance`` replaced by a solve that waits for ``release``, so a second run
    arrives while it is under way; then the true distance, or ``error`` raised."""

    def __init__(self, monkeypatch, error: BaseException | None = None) -> None:
        self.started, self.release, self.calls = threading.Event(), threading.Event(), []
        self.error = error
        monkeypatch.setattr(geodesic, "geodesic_distance", self)

    def __call__(self, *args):
        self.calls.append(args)
        self.started.set()
        self.release.wait(5)
        if self.error is not None:
            raise self.error
        return geodesic_distance(*args)


def _second_run_during_the_first(solve: _HeldSolve, run) -> None:
    first, second = threading.Thread(target=run), threading.Thread(target=run)
    first.start()
    assert solve.started.wait(5)
    second.start()
    solve.release.set()
    first.join(5)
    second.join(5)


def test_the_two_runs_of_a_negative_click_share_one_solve_across_threads(monkeypatch) -> None:
    """The run that asks second waits for the solve under way (scipy's Dijkstra holds the
    GIL, so solving it again beside it would only add time)."""
    cost, seeds = _cost_and_seeds()
    solve, shared, found = _HeldSolve(monkeypatch), SharedSolve(), []
    _second_run_during_the_first(solve, lambda: found.append(
        shared.distance(cost.copy(), seeds.copy(), SPACING)))
    assert len(solve.calls) == 1 and len(found) == 2 and found[0] is found[1]
    assert np.array_equal(found[0], _truth(cost, seeds))


def test_an_error_in_the_shared_solve_reaches_the_run_waiting_for_it(monkeypatch) -> None:
    cost, seeds = _cost_and_seeds()
    solve = _HeldSolve(monkeypatch, MemoryError("no room for the graph"))
    shared, errors = SharedSolve(), []

    def run() -> None:
        try:
            shared.distance(cost, seeds, SPACING)
        except MemoryError as exc:
            errors.append(exc)

    _second_run_during_the_first(solve, run)
    assert len(errors) == 2 and len(solve.calls) == 1
    with pytest.raises(MemoryError):   # a failed solve is not kept: the next run solves again
        shared.distance(cost, seeds, SPACING)
    assert len(solve.calls) == 2
