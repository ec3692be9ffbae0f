"""Declarative validation for configuration dataclasses, and a strict dict codec.

Every value that enters the device (TOML, XML, SADP) is turned into the model through
`from_dict` or `checked_replace`; both reject unknown keys, wrong types and out-of-range values
with a `ConfigError` naming the offending path, and never return a half-valid object.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A value does not fit the model; `path` names where (e.g. `security.lockout_attempts`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
    pattern: str | None = None,
    max_len: int | None = None,
    max_items: int | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """A dataclass field with its validation rules attached as metadata."""
    meta = {
        "min": min,
        "max": max,
        "choices": choices,
        "pattern": re.compile(pattern) if pattern else None,
        "max_len": max_len,
        "max_items": max_items,
        "check": check,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_ip(value: str) -> None:
    """Rule for fields that hold an IPv4/IPv6 address (empty means unset)."""
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_rules(path: str, value: Any, meta: Mapping[str, Any]) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(path, f"{value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(path, f"{value} is above the maximum {hi}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(path, f"{value!r} is not one of {', '.join(map(str, choices))}")
    max_len = meta.get("max_len")
    if max_len is not None and len(value) > max_len:
        raise ConfigError(path, f"longer than {max_len} characters")
    max_items = meta.get("max_items")
    if max_items is not None and len(value) > max_items:
        raise ConfigError(path, f"more than {max_items} entries")
    pattern = meta.get("pattern")
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(path, f"{value!r} has the wrong form")
    check = meta.get("check")
    if check is not None:
        try:
            check(value)
        except ValueError as exc:
            raise ConfigError(path, str(exc)) from None


def _convert(path: str, hint: Any, raw: Any) -> Any:
    """Convert a raw (TOML/JSON-like) value to the annotated type, strictly."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(raw, Mapping):
            raise ConfigError(path, "expected a table")
        return from_dict(hint, raw, path)
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(raw, list | tuple):
            raise ConfigError(path, "expected a list")
        return [_convert(f"{path}[{i}]", item_hint, item) for i, item in enumerate(raw)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw is None:
            return None
        return _convert(path, args[0], raw)
    if hint is bool:
        if not isinstance(raw, bool):
            raise ConfigError(path, "expected true or false")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(path, "expected an integer")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ConfigError(path, "expected a number")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise ConfigError(path, "expected a string")
        return raw
    raise ConfigError(path, f"unsupported type {hint!r}")  # a model bug, not user input


def validate(obj: Any, path: str = "") -> None:
    """Check every field of a dataclass tree against its rules and the class's own `check()`."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        fpath = f"{path}.{f.name}" if path else f.name
        _check_type(fpath, hints[f.name], value)
        if value is not None:
            _check_rules(fpath, value, f.metadata)
        if dataclasses.is_dataclass(value):
            validate(value, fpath)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    validate(item, f"{fpath}[{i}]")
    own_check = getattr(obj, "check", None)
    if callable(own_check):
        try:
            own_check()
        except ValueError as exc:
            raise ConfigError(path, str(exc)) from None


def _check_type(path: str, hint: Any, value: Any) -> None:
    # Re-running the converter on the value itself is the type check: it accepts exactly what
    # from_dict would produce.
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ConfigError(path, f"expected {hint.__name__}")
        return
    _convert(path, hint, to_plain(value))


def from_dict(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build `cls` from a mapping: missing keys take defaults, unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"{where}{unknown[0]}", "unknown setting")
    hints = _hints(cls)
    kwargs = {
        name: _convert(f"{path}.{name}" if path else name, hints[name], value)
        for name, value in data.items()
    }
    obj = cls(**kwargs)
    validate(obj, path)
    return obj


def to_plain(value: Any) -> Any:
    """Dataclass tree -> plain dicts/lists (None dropped, as TOML has no null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def checked_replace(obj: T, path: str = "", **changes: Any) -> T:
    """`dataclasses.replace` that validates the result (raises ConfigError, leaves obj alone)."""
    new = dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    validate(new, path)
    return new
