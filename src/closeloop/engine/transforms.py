"""Named transforms a mapping may apply after normalization (``transform: <name>`` in the YAML)."""

from __future__ import annotations

from collections.abc import Callable

from closeloop.engine.normalize import Canonical


def _title(value: Canonical) -> Canonical:
    return value.title() if isinstance(value, str) else value


def _upper(value: Canonical) -> Canonical:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Canonical) -> Canonical:
    return value.lower() if isinstance(value, str) else value


def _strip_plus_tag(value: Canonical) -> Canonical:
    """``ann+news@x.com`` → ``ann@x.com``: match people who tag their addresses."""
    if not isinstance(value, str) or "@" not in value:
        return value
    local, _, domain = value.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


TRANSFORMS: dict[str, Callable[[Canonical], Canonical]] = {
    "title": _title,
    "upper": _upper,
    "lower": _lower,
    "strip_plus_tag": _strip_plus_tag,
}
