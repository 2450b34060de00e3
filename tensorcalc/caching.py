"""A cached property without a lock.

``functools.cached_property`` before Python 3.12 holds one lock per property for all
instances of a class while it computes a value. IR nodes compute their properties
from their children's (``Term.free`` asks ``Sum.free``, which asks ``Term.free``), so
two threads walking two trees could each hold one lock and wait for the other: a
deadlock. Here the value is computed without a lock and stored in the instance; two
threads that race compute equal values from immutable data and one of them is kept.

>>> class Box:
...     @cached_property
...     def twice(self) -> int:
...         return 2
>>> Box().twice
2
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached_property(Generic[T]):  # noqa: N801 - named as the functools one it replaces
    def __init__(self, fn: Callable[[Any], T]):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        cache = instance.__dict__
        try:
            return cache[self.name]
        except KeyError:
            value = self.fn(instance)
            return cache.setdefault(self.name, value)


def memo(obj: object, slot: str, make: Callable[[], T]) -> T:
    """A value computed once per immutable IR node and kept on the node under ``slot``, as
    ``cached_property`` does, for values asked of nodes of several kinds (a factor's
    names, the keys of nested sums): no lock, for the same reason."""
    cache = obj.__dict__
    if slot not in cache:
        cache[slot] = make()
    found: T = cache[slot]
    return found
