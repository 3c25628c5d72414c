"""A tiny generic name -> factory registry (used for models and metrics).

New entries can be added from outside the package::

    from unifuse.models import register_model

    @register_model("my_net", description="...")
    def my_net(**cfg): ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    description: str = ""
    tags: Dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Maps lowercase names to factories."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Entry[T]] = {}

    def register(self, name: str, description: str = "", **tags: Any):
        key = name.lower()

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if key in self._entries and self._entries[key].factory is not factory:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = Entry(key, factory, description or (factory.__doc__ or "").strip().split("\n")[0], tags)
            return factory

        return deco

    def get(self, name: str) -> Entry[T]:
        key = str(name).lower()
        if key not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; available: {known}")
        return self._entries[key]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return str(name).lower() in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[k] for k in sorted(self._entries))
