"""What TC-MoA did on a pair: per-module prompt maps and per-task adapter usage (paper Fig. 1, Fig. 2b)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from .network import TCMoA, TCMoAOutput


def prompt_maps(out: TCMoAOutput) -> dict[str, torch.Tensor]:
    """``{"enc0/x": (B, pH, pW), "enc0/y": …}``: every module's per-token prompts as maps in (0, 1)."""
    pH, pW = out.grid
    maps = {}
    for name, m in out.modules.items():
        maps[f"{name}/x"] = m.prompt_x.detach().reshape(-1, pH, pW)
        maps[f"{name}/y"] = m.prompt_y.detach().reshape(-1, pH, pW)
    return maps


@torch.no_grad()
def adapter_usage(net: TCMoA, a: torch.Tensor, b: torch.Tensor, tasks: Iterable[Any] = (0, 1, 2)) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Routing statistics of every task router on one pair (eval mode, no noise).

    ``a``, ``b``: ``(B, 3|1, H, W)`` in ``[0, 1]`` with sides the network takes directly
    (multiples of ``net.config.unit``). Returns ``{task: {module: {"importance": [N_A],
    "load": [N_A], "share": [N_A]}}}``: summed gates, tokens routed to each adapter and the
    share of the gate mass (importance / tokens).
    """
    x, y = net.normalize(a.float()), net.normalize(b.float())
    stats = {}
    for t in tasks:
        out = net.forward_features(x, y, t)
        per = {}
        for name, m in out.modules.items():
            imp, load = m.routing.importance.float(), m.routing.load.float()
            per[name] = {"importance": imp.tolist(), "load": load.tolist(), "share": (imp / imp.sum()).tolist()}
        stats[str(t)] = per
    return stats
