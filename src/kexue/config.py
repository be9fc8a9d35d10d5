"""Typed configuration: build (nested) dataclasses from Kedro parameter dicts, failing fast.

Every model and trainer has a config dataclass. Nodes receive plain ``params:<pipeline>.<key>``
dicts and call :func:`build_config`, which rejects unknown keys and wrong types with a message that
names the offending key, lists the valid ones and says where to fix it.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 1e-3
    >>> build_config(Opt, {"lr": 0.1}, where="params:tricks.optimizer").lr
    0.1
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

#: A section of a pipeline's top-level parameters (``trainer``, ``model`` ...) in that pipeline's
#: ``Parameters`` dataclass (``kexue.pipelines.<name>.parameters``). The top level is checked
#: before the first node of a run (:class:`kexue.hooks.PreflightHooks`) and by the nodes that
#: read it, so a misspelt key fails at once, naming it and the closest valid one, instead of
#: leaving its default in place; each section is checked by its own config dataclass where a
#: node reads it.
Section = dict[str, Any] | None


class ConfigError(ValueError):
    """A parameter is missing, unknown or of the wrong type. The message says how to fix it."""


def _fail(where: str, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"Invalid parameter '{where}.{key}': {problem}. Fix: {fix}")


def _coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """Check/convert ``value`` against the annotation ``tp`` (a small, strict subset of typing)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise _fail(where, key, f"{value!r} matches none of {tp}", "use one of those types")
    if origin is typing.Literal:
        if value not in args:
            raise _fail(where, key, f"{value!r} is not allowed", f"use one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _fail(where, key, f"expected a mapping, got {type(value).__name__}",
                        f"give {key} as a YAML mapping of {tp.__name__} fields")
        return build_config(tp, value, where=f"{where}.{key}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(where, key, f"expected a list, got {value!r}", "write a YAML list")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _fail(where, key, f"expected a mapping, got {value!r}", "write a YAML mapping")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, key, f"expected true/false, got {value!r}", "write true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, key, f"expected an integer, got {value!r}", "write a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, key, f"expected a number, got {value!r}", "write a number, e.g. 1e-3")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, key, f"expected a string, got {value!r}", "quote the value")
        return value
    return value


def build_config(cls: type[T], params: Mapping[str, Any] | None, where: str = "params") -> T:
    """Instantiate dataclass ``cls`` from ``params``, validating keys and types recursively.

    Args:
        cls: A dataclass type whose fields all have defaults or are given in ``params``.
        params: The parameter mapping (``None`` means all defaults).
        where: Where the mapping lives, used in error messages (``params:tricks.trainer``).

    Returns:
        The dataclass instance.

    Raises:
        ConfigError: Unknown key, missing required key, or a value of the wrong type.
    """
    if params is None:
        params = {}
    if dataclasses.is_dataclass(params) and isinstance(params, cls):
        return params
    if not isinstance(params, Mapping):
        raise ConfigError(f"Invalid parameter '{where}': expected a mapping of {cls.__name__} "
                          f"fields, got {type(params).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(cls, params, where)
    kwargs = {}
    for name, field in fields.items():
        if name in params:
            kwargs[name] = _coerce(params[name], hints[name], where, name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _fail(where, name, "required but missing", f"add `{name}:` under {where}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"Invalid parameters under '{where}': {exc}") from exc
    return obj


def check_keys(cls: type, params: Mapping[str, Any], where: str = "params") -> None:
    """Refuse keys of ``params`` that are not fields of dataclass ``cls``, naming each (with the
    closest field) and the valid keys; values are not checked (for a section that is merged
    with others before it is built, so that a misspelt key is named where it was set).

    Raises:
        ConfigError: An unknown key.
    """
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(params) - set(fields), key=str)
    if unknown:
        def named(key: Any) -> str:
            close = difflib.get_close_matches(str(key), fields, n=1)
            return f"{where}.{key}" + (f" (did you mean '{close[0]}'?)" if close else "")

        raise ConfigError(
            f"Unknown parameter(s) {', '.join(named(k) for k in unknown)}. "
            f"Valid keys for {cls.__name__}: {', '.join(sorted(fields))}. "
            "Fix: correct the spelling in conf/base/parameters_*.yml (or your --params override)."
        )


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-dict view of a (nested) config dataclass, for reports and checkpoints."""
    return dataclasses.asdict(cfg)


def require_at_least(cfg: Any, minimum: float, *names: str) -> None:
    """For ``validate()`` methods: raise ``ValueError`` naming every field below ``minimum``.

    Example:
        >>> @dataclasses.dataclass
        ... class M:
        ...     width: int = 0
        >>> require_at_least(M(), 1, "width")
        Traceback (most recent call last):
        ...
        ValueError: width=0 must be >= 1
    """
    bad = [f"{name}={getattr(cfg, name)!r}" for name in names if getattr(cfg, name) < minimum]
    if bad:
        raise ValueError(f"{', '.join(bad)} must be >= {minimum}")


def require_dropout(cfg: Any, name: str = "dropout") -> None:
    """For ``validate()`` methods: a dropout probability must lie in ``[0, 1)``."""
    value = getattr(cfg, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} must lie in [0, 1)")
