"""The one registry pattern (timm's): a named set of kinds with ``register``, ``names`` (``list_*``) and ``get``
(``create_*`` looks its kind up here), where an unknown name is one line with the close matches.

Each registry lives in its own ``*registry`` (or ``kinds``) module and holds classes or entries whose behaviour is
their own: what code does differently per kind is a method or a declared attribute of the registered thing, never
a string comparison elsewhere (``tests/test_architecture.py`` counts those).

    DEFENSES = Registry("defense kind", "typobench list defenses")

    @DEFENSES.register("blur")
    class Blur(Defense): ...

    DEFENSES.get("blurr")  # UsageError: unknown defense kind 'blurr': did you mean blur? see `typobench list defenses`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from typobench.core.errors import UsageError, close_matches

T = TypeVar("T")


class Registry(Generic[T]):
    """Kinds by name, in registration order. ``what`` names a kind in messages (``"data set"``), ``how_to_list``
    is the command (or sentence) that lists them (None: messages list the names), ``declares`` the attributes
    every kind must set (checked when it is registered)."""

    def __init__(self, what: str, how_to_list: str | None = None, *, declares: tuple[str, ...] = ()):
        self.what = what
        self.how_to_list = how_to_list
        self.declares = declares  # attributes every registered kind must set (its base class declares them)
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name``; a name is registered once, and a kind sets what ``declares`` names."""
        if name in self._items:
            raise ValueError(f"{self.what} '{name}' is already registered")
        missing = [attribute for attribute in self.declares if not hasattr(item, attribute)]
        if missing:
            raise TypeError(f"{self.what} '{name}' does not set {', '.join(missing)}: every {self.what} declares "
                            f"{', '.join(self.declares)}")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator: ``@REGISTRY.register("name")`` on a class or function."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        """The kind called ``name``; an unknown name is a :class:`UsageError` with the close matches."""
        try:
            return self._items[name]
        except KeyError:
            raise self.unknown(name) from None

    def unknown(self, name: object) -> UsageError:
        """The one-line error for a name that is not registered (close matches, then where to list them)."""
        hint = close_matches(str(name), self._items)
        suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
        where = f"see `{self.how_to_list}`" if self.how_to_list else f"known: {', '.join(self._items)}"
        return UsageError(f"unknown {self.what} '{name}': {suggestion}{where}")

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._items.items())

    def values(self) -> list[T]:
        """Registered kinds in registration order."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["Registry"]
