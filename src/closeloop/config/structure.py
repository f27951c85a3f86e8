"""Structural checks with the document models; pydantic errors become problems at the YAML node."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from closeloop.config.problems import Problems, one_of, unknown
from closeloop.config.yamlsrc import Loc, Source

M = TypeVar("M", bound=BaseModel)
_ANNOTATED: Any = Annotated  # built at run time from a field's annotation and FieldInfo


def keys_of(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, as written in YAML (aliases included)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def check_mapping(source: Source, loc: Loc, value: Any, what: str, problems: Problems) -> bool:
    """True when ``value`` is a mapping; otherwise record that a mapping was expected."""
    if isinstance(value, dict):
        return True
    source.problem(problems, loc, f"{what} must be a mapping of keys to values, not {_kind(value)}")
    return False


def validate(model: type[M], data: Any, loc: Loc, source: Source, problems: Problems) -> M | None:
    """Validate ``data`` (found at ``loc``) with ``model``; each error becomes one problem, None if any."""
    ok, value = _validate_type(model, data, loc, source, problems)
    return value if ok else None


def sections(
    model: type[M],
    data: dict[str, Any],
    loc: Loc,
    source: Source,
    problems: Problems,
    *,
    per_entry: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> M | None:
    """Validate a mapping key by key: one bad section (or entry of a ``per_entry`` section) spares the rest.

    Keys in ``skip`` are left to the caller; an invalid optional key falls back to its default. Returns the
    model built from what validated, or None when a required key is missing or invalid.
    """
    for key in data:
        if str(key) not in keys_of(model):
            source.problem(problems, (*loc, key), unknown("key", str(key), keys_of(model)), key=True)
    kept: dict[str, Any] = {}
    complete = True
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in skip:
            continue
        if key not in data:
            if info.is_required():
                source.problem(problems, loc, f"missing required key {key!r}", key=True)
                complete = False
            continue
        annotation = _ANNOTATED[info.annotation, info]
        if key in per_entry and isinstance(data[key], dict):
            entry_type = typing.get_args(info.annotation)[1]
            kept[name] = _entries(entry_type, data[key], (*loc, key), source, problems)
            continue
        ok, value = _validate_type(annotation, data[key], (*loc, key), source, problems)
        if ok:
            kept[name] = value
        complete = complete and (ok or not info.is_required())
    return model.model_construct(**kept) if complete else None


def _entries(entry_type: Any, data: dict[str, Any], loc: Loc, source: Source, problems: Problems) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, raw in data.items():
        ok, value = _validate_type(entry_type, raw, (*loc, key), source, problems)
        if ok:
            kept[key] = value
    return kept


def _validate_type(annotation: Any, data: Any, loc: Loc, source: Source, problems: Problems) -> tuple[bool, Any]:
    try:
        return True, _adapter(annotation).validate_python(data)
    except ValidationError as exc:
        _report_all(annotation, exc.errors(include_url=False, include_input=False), loc, source, problems)
        return False, None


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _report_all(model: Any, errors: list[ErrorDetails], loc: Loc, source: Source, problems: Problems) -> None:
    # The branches of a union fail together at one node: their expectations join into one message.
    expected: dict[Loc, list[str]] = {}
    for error in errors:
        rel = tuple(error["loc"])
        name = str(rel[-1]) if rel else ""
        where = _known_prefix(source, (*loc, *rel))
        if error["type"] == "extra_forbidden":
            owner = _model_at(model, rel[:-1])
            source.problem(problems, (*loc, *rel), unknown("key", name, keys_of(owner) if owner else []), key=True)
        elif error["type"] == "missing":
            owner = _model_at(model, rel[:-1])
            hint = f" (keys: {one_of(keys_of(owner))})" if owner else ""
            source.problem(problems, where, f"missing required key {name!r}{hint}", key=True)
        else:
            found = expected.setdefault(where, [])
            text = _expectation(model, rel, error)
            if text not in found:
                found.append(text)
    for where, texts in expected.items():
        label = next((step for step in reversed(where) if isinstance(step, str)), "")
        message = texts[0] + "".join(", or " + t.removeprefix("Input should be ") for t in texts[1:])
        source.problem(problems, where, f"{label}: {message}" if label else message)


def _expectation(model: Any, rel: Loc, error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "model_type":
        owner = _model_at(model, rel)
        return f"Input should be a mapping with keys {one_of(keys_of(owner))}" if owner else "Input should be a mapping"
    if kind in ("dict_type", "model_attributes_type"):
        return "Input should be a mapping"
    return error["msg"].removeprefix("Value error, ")


def _known_prefix(source: Source, loc: Loc) -> Loc:
    """The longest prefix of ``loc`` that exists in the file (pydantic adds union branch names)."""
    here = tuple(loc)
    while here and here not in source.values:
        here = here[:-1]
    return here


def _model_at(model: Any, rel: Sequence[str | int]) -> type[BaseModel] | None:
    """The document model that owns the keys at ``rel`` inside ``model`` (following dicts, lists, unions)."""
    current: Any = model
    for step in rel:
        current = _step(current, step)
        if current is None:
            return None
    return next((c for c in _flatten(current) if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _step(annotation: Any, step: str | int) -> Any:
    for candidate in _flatten(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and isinstance(step, str):
            for name, info in candidate.model_fields.items():
                if step in (name, info.alias):
                    return info.annotation
        origin = typing.get_origin(candidate)
        if origin is list and isinstance(step, int):
            return typing.get_args(candidate)[0]
        if origin is dict and isinstance(step, str):
            return typing.get_args(candidate)[1]
    return None


def _flatten(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [flat for arg in typing.get_args(annotation) for flat in _flatten(arg)]
    return [annotation]


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    return f"the {type(value).__name__} {value!r}" if not isinstance(value, dict) else "a mapping"
