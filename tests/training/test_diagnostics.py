"""Gradient-conflict diagnostics: norms and pairwise angles, checked on hand-made gradients."""

from __future__ import annotations

import math

import pytest
import torch

from unifuse.training.diagnostics import conflict_fields, conflict_stats, flat_task_gradients


def test_conflict_stats_by_hand():
    g = torch.tensor([[3.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [0.0, 0.0]])
    s = conflict_stats(g, ["a", "b", "c", "z"])
    assert s["gradnorm_a"] == 3 and s["gradnorm_b"] == 2 and s["gradnorm_c"] == pytest.approx(math.sqrt(2))
    assert s["angle_a_b"] == pytest.approx(90)
    assert s["angle_a_c"] == pytest.approx(135)  # conflicting: > 90°
    assert s["angle_b_c"] == pytest.approx(45)
    assert math.isnan(s["angle_a_z"])  # undefined for a zero gradient
    assert list(s) == conflict_fields(["a", "b", "c", "z"])


def test_flat_task_gradients_of_opposite_losses():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    v = torch.nn.Parameter(torch.tensor([0.5]))
    l1 = (w**2).sum() + v.sum()  # grad (2, 4, 1)
    l2 = -(w**2).sum() - v.sum()
    g = flat_task_gradients([l1, l2], [w, v])
    assert torch.equal(g, torch.tensor([[2.0, 4.0, 1.0], [-2.0, -4.0, -1.0]], dtype=torch.float64))
    assert w.grad is None  # .grad untouched
    assert conflict_stats(g, ["x", "y"])["angle_x_y"] == pytest.approx(180)
