"""A cached property without a lock, and the caches kept on IR nodes (``Memo``).

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
from typing import Any, ClassVar, Generic, TypeVar, overload

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


class Memo(Generic[T]):
    """A value computed once per immutable IR node and kept on the node, as
    ``cached_property`` does, for values asked of nodes of several kinds (a factor's names,
    the keys of nested sums): no lock, for the same reason.

    Each cache is one ``Memo``, declared once, below: its key has a colon, which no
    attribute or ``cached_property`` name can have, and a second cache of the same name is
    refused, so two caches can never share a slot (a sum's key as a factor and as a sum
    once did, and whichever was asked first answered both).
    """

    _taken: ClassVar[set[str]] = set()

    def __init__(self, name: str):
        key = f"memo:{name}"
        if key in Memo._taken:
            raise ValueError(f"a cache named {name!r} is declared already")
        Memo._taken.add(key)
        self.key = key

    def of(self, node: object, make: Callable[[], T]) -> T:
        """The value kept on ``node``; ``make()`` the first time it is asked."""
        cache = node.__dict__
        if self.key not in cache:
            cache[self.key] = make()
        found: T = cache[self.key]
        return found

    def get(self, node: object) -> T | None:
        """The value kept on ``node``, or None where none is yet."""
        found: T | None = node.__dict__.get(self.key)
        return found

    def put(self, node: object, value: T) -> None:
        node.__dict__[self.key] = value


# Every cache kept on IR nodes, one line each.
MENTIONED: Memo[frozenset[str]] = Memo("mentioned")  # every index name inside a factor
READS: Memo[tuple[str, tuple[str, ...]]] = Memo("reads")  # a factor's kind and tensors
ARITHMETIC: Memo[bool] = Memo("arithmetic")  # does a sum use index arithmetic
FACTOR_KEY: Memo[str] = Memo("factor_key")  # canonical key of a factor
SUM_KEY: Memo[str] = Memo("sum_key")  # canonical key of a sum's terms
TERM_KEY: Memo[str] = Memo("term_key")  # canonical key of a term, coefficient aside
BASE_KEY: Memo[str] = Memo("base_key")  # key of a power's base, bound names aside
CANONICAL: Memo[Any] = Memo("canonical")  # a closed term's canonical form (a Term)
SIMPLIFIED: Memo[dict[Any, Any]] = Memo("simplified")  # a sum simplified, by context
