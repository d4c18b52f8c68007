"""Type and range checks of the job's settings, from the schema's fields: one validator for both sides.

``coerce`` checks a value against a field's type hint (the schema's Literals,
unions, lists and mappings) and ``range_problem`` against the limits declared
on the field (``schema.setting``). ``launcher.config`` applies both to every
value of a job, naming where it came from; ``check_setting`` applies them to
one keyword override in a worker (``ctx.dataloader(..., batch_size=0)``).

Standard library only; imported by both sides.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from launcher.errors import ConfigError
from launcher.schema import CheckpointSettings, key_of


def coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(True, value as the field holds it)`` if ``value`` fits ``hint``, else ``(False, None)``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, result = coerce(value, option)
            if ok:
                return True, result
        return False, None
    if origin is Literal:
        return (value in typing.get_args(hint)), value
    if hint is type(None):
        return value is None, None
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if hint is str:
        if isinstance(value, str):
            return True, value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, str(value)
        return False, None
    if hint is Any:
        return True, value
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str) and item is str:
            return True, [value]
        if not isinstance(value, list):
            return False, None
        items = [coerce(v, item) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            return False, None
        pairs = [(coerce(k, key_type), coerce(v, value_type)) for k, v in value.items()]
        ok = all(k_ok and v_ok for (k_ok, _), (v_ok, _) in pairs)
        return ok, {k: v for (_, k), (_, v) in pairs}
    return False, None  # pragma: no cover - a schema type this validator does not know


def expected(hint: Any) -> str:
    """What a value of ``hint`` looks like, in words: ``an integer or 'auto'``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(expected(option) for option in typing.get_args(hint))
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, str(hint))


def show(value: Any) -> str:
    """A value as an error message quotes it (containers by their kind)."""
    return repr(value) if not isinstance(value, dict | list) else type(value).__name__


def range_problem(field: dataclasses.Field[Any], value: Any) -> str | None:
    """What is wrong with a well-typed ``value`` given the field's declared limits, or None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None  # None, 'auto' and other non-numbers of a union are not ranged
    limits = field.metadata
    if "minimum" in limits and value < limits["minimum"]:
        return f"must be >= {limits['minimum']:g}, got {value:g}"
    if "above" in limits and value <= limits["above"]:
        return f"must be > {limits['above']:g}, got {value:g}"
    if "maximum" in limits and value > limits["maximum"]:
        return f"must be <= {limits['maximum']:g}, got {value:g}"
    return None


def limits_text(field: dataclasses.Field[Any]) -> str:
    """The field's range in words, for a hint: ``a value >= 1``; empty without limits."""
    parts = [f"{op} {field.metadata[key]:g}" for key, op in (("minimum", ">="), ("above", ">"), ("maximum", "<="))
             if key in field.metadata]
    return f"a value {' and '.join(parts)}" if parts else ""


def check_setting(section: type, name: str, value: Any, where: str) -> Any:
    """``value`` for the field ``name`` of the schema section ``section``, checked; ``ConfigError`` if not.

    ``where`` starts the message (``"dataloader(): data"``: the caller and the section's key).
    """
    field = next(f for f in dataclasses.fields(section) if f.name == name)
    return checked(value, typing.get_type_hints(section)[name], field, f"{where}.{key_of(field)}", "pass")


def words(hint: Any) -> tuple[Any, ...]:
    """The Literal values a field's type allows (``'auto'``, ``'never'``): words, not paths, in a path field."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return tuple(word for option in typing.get_args(hint) for word in words(option))
    return ()


def checkpoint_conflict(settings: CheckpointSettings) -> tuple[str, str, str] | None:
    """``(key, problem, fix)`` when the ``checkpoint:`` settings contradict each other, else None."""
    for name in ("every_steps", "every_seconds"):
        if getattr(settings, name) is not None and settings.dir is None:
            return (name, "is set but checkpoint.dir is not: there is nowhere to save",
                    f"set checkpoint.dir, or remove checkpoint.{name}")
    return None


def checked(value: Any, hint: Any, field: dataclasses.Field[Any], label: str, advice: str) -> Any:
    """``value`` as the field holds it, or a ``ConfigError`` that starts with ``label`` (the place and key)
    and whose hint starts with ``advice`` (``"set world.nprocs to"``, ``"pass"``)."""
    ok, result = coerce(value, hint)
    if not ok:
        raise ConfigError(f"{label}: expected {expected(hint)}, got {show(value)}", f"{advice} {expected(hint)}")
    problem = range_problem(field, result)
    if problem is not None:
        raise ConfigError(f"{label}: {problem}", f"{advice} {limits_text(field)}")
    return result
