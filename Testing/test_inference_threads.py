"""Torch threads fitted to the free cores (mskai.inference.threads)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("cores", "load", "threads"),
                         [(2, 0.2, 2), (2, 1.0, 2), (2, 2.0, 1), (2, 3.5, 1), (16, 5.0, 12),
                          (16, 40.0, 1)])
def test_threads_are_the_cores_left_by_other_processes(cores, load, threads):
    from mskai.inference.threads import free_cpu_threads

    assert free_cpu_threads(cores, load) == threads


def test_the_thread_count_is_restored_after_the_block():
    import torch

    from mskai.inference.threads import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
