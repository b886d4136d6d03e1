"""A name -> object registry filled by decorators (timm's ``@register_model`` idea)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mlbench.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind, with metadata, registered once each.

    Example:
        >>> MODELS: Registry[Callable] = Registry("model")
        >>> @MODELS.register("tiny")
        ... def tiny(): ...
        >>> MODELS.get("tiny") is tiny
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; registering a name twice raises."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The object registered as ``name``; a ConfigError listing valid names otherwise."""
        if name not in self._items:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            )
        return self._items[name]

    def meta(self, name: str) -> dict[str, Any]:
        """The keyword metadata given at registration."""
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
