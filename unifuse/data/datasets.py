"""Training datasets (stub; implementation in progress)."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union


class PairFolderDataset:
    """Pairs ``root/sub_a/<stem>.*`` with ``root/sub_b/<partner(stem)>.*``; ``get(index, seed)`` is a pure
    function of (index, seed) returning {"A": (1,h,w) float32, "B": ..., "name": str, "task": str}."""

    def __init__(self, root, sub_a: str, sub_b: str, task: str, crop: Optional[int] = 64, gray: bool = True,
                 partner: Union[None, str, Callable[[str], str]] = None, pad_mode: str = "reflect", cache: bool = False):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, index: int, seed: int = 0) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get(index, 0)


class SyntheticPairDataset:
    """Synthetic MFF/MEF pairs from clean images (unifuse.data.synthetic); same ``get(index, seed)`` contract."""

    def __init__(self, images_or_folder=None, task: str = "MFF", crop: Optional[int] = 64, length: int = 1000, gray: bool = True):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, index: int, seed: int = 0) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get(index, 0)


def build_dataset(cfg: dict) -> Any:
    """Build a dataset from ``{type: folder|synthetic, root, sub_a, sub_b, task, crop, ...}``."""
    raise NotImplementedError
