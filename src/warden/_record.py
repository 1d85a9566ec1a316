"""A small stand-in for ``dataclasses`` on the hook hot path.

``import dataclasses`` pulls in ``inspect`` (and ``ast``, ``dis``, ``tokenize``): about a third
of a warden hook process's start-up. The modules a cached-plan evaluation imports declare their
records with this ``dataclass``/``field`` instead: same class syntax, generated ``__init__``,
``__repr__`` and ``__eq__`` (and ``__hash__`` plus read-only attributes when ``frozen``). Type
checkers see it as a dataclass transform (PEP 681).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")

_MISSING = object()


class _Field:
    __slots__ = ("default_factory",)

    def __init__(self, default_factory: Callable[[], Any]) -> None:
        self.default_factory = default_factory


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is made fresh for every instance."""
    return _Field(default_factory)


class SlotRecord:
    """``==`` and ``repr`` over ``__slots__``, for hand-written slotted records on the hot
    path (cheaper to build than a ``dataclass``); unhashable, as a mutable dataclass."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


class FrozenInstanceError(AttributeError):
    pass


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _build(cls: type[T], frozen: bool) -> type[T]:
    names: list[str] = []
    params: list[str] = []
    body: list[str] = []
    scope: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - no inspect
    for name, annotation in annotations.items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        names.append(name)
        default = cls.__dict__.get(name, _MISSING)
        value = name
        if isinstance(default, _Field):
            scope[f"_f_{name}"] = default.default_factory
            params.append(f"{name}=_MISSING")
            value = f"_f_{name}() if {name} is _MISSING else {name}"
            delattr(cls, name)
        elif default is _MISSING:
            params.append(name)
        else:
            scope[f"_d_{name}"] = default
            params.append(f"{name}=_d_{name}")
        assign = f"_set(self, {name!r}, {value})" if frozen else f"self.{name} = {value}"
        body.append("    " + assign)
    src = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    exec(src, scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    fields = tuple(names)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in fields)
        return f"{type(self).__name__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in fields)

    type.__setattr__(cls, "__init__", init)
    if "__repr__" not in cls.__dict__:
        type.__setattr__(cls, "__repr__", __repr__)
    type.__setattr__(cls, "__eq__", __eq__)
    type.__setattr__(cls, "__record_fields__", fields)
    if frozen:
        type.__setattr__(cls, "__setattr__", _frozen_setattr)
        type.__setattr__(
            cls, "__hash__", lambda self: hash(tuple(getattr(self, n) for n in fields))
        )
    else:
        type.__setattr__(cls, "__hash__", None)
    return cls


if TYPE_CHECKING:

    @overload
    @dataclass_transform(field_specifiers=(field,))
    def dataclass(cls: type[T], /) -> type[T]: ...

    @overload
    def dataclass(*, frozen: bool = False, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


def dataclass(cls: Any = None, /, *, frozen: bool = False, slots: bool = False) -> Any:
    """``@dataclass`` or ``@dataclass(frozen=True)`` (``slots`` is accepted and ignored)."""
    if cls is not None:
        return _build(cls, frozen)
    return lambda c: _build(c, frozen)
