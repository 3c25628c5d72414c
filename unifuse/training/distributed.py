"""Data-parallel helpers: process group set-up from ``torchrun`` environment variables.

Under ``torchrun --nproc_per_node K`` every process sees ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` joins the
process group (NCCL on CUDA, gloo on CPU). Without those variables the trainer runs as a
single process (``world_size == 1``) and every helper here is a no-op.

Exact data parallelism (see :class:`GatherBatch`): each rank forwards its slice of the
global batch, the fused slices are gathered so that *every rank computes the task losses
on the whole global batch* (the TITA losses are not means of per-sample terms: the SSIM
weights are batch statistics, and FAMO needs the loss values), and the gradient of the
local slice is taken from that global loss. DDP then averages the per-rank parameter
gradients; multiplying by the world size gives the single-process gradient exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Sequence

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(spec: str | None, local_rank: int = 0) -> torch.device:
    """``"auto"``/``None`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``."""
    spec = (spec or "auto").lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(spec)
    except RuntimeError as exc:
        raise ConfigError(f"device {spec!r} is not a valid torch device") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif dev.type != "cpu":
        raise ConfigError(f"device {spec!r} is not supported for training (use cpu or cuda)")
    return dev


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: str | None = "auto", timeout_s: float = 600.0) -> DistContext:
    """Join the ``torchrun`` process group if the environment defines one.

    The backend is NCCL when the resolved device is CUDA, gloo otherwise.
    """
    world = env_world_size()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = resolve_device(device, local_rank)
    if world <= 1:
        return DistContext(0, 1, 0, dev, "")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        from datetime import timedelta

        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank, world, local_rank, dev, backend)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_gather_object(ctx: DistContext, obj: Any) -> List[Any]:
    """Objects from every rank (rank order); ``[obj]`` when not distributed."""
    if not ctx.enabled:
        return [obj]
    out: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj: Any, src: int = 0) -> Any:
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum_(ctx: DistContext, tensors: Sequence[torch.Tensor]) -> None:
    """In-place sum over ranks of each tensor (flattened into one buffer)."""
    if not ctx.enabled or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


class GatherBatch(torch.autograd.Function):
    """Concatenate every rank's tensor along dim 0; the backward keeps this rank's slice.

    Valid when all ranks compute the same function of the gathered tensor (the global
    loss): the gradient of that loss w.r.t. this rank's slice is then already complete on
    this rank and no backward communication is needed. All ranks' slices must have the
    same shape.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, world_size: int, rank: int) -> torch.Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(world_size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n], None, None


def gather_batch(ctx: DistContext, x: torch.Tensor) -> torch.Tensor:
    """Global batch from per-rank slices (identity without distribution), autograd-aware."""
    if not ctx.enabled:
        return x
    if x.requires_grad:
        return GatherBatch.apply(x, ctx.world_size, ctx.rank)
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)
