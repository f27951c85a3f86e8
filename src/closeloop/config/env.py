"""``${NAME}`` and ``${NAME:-default}`` interpolation of environment variables into string values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from closeloop.config.problems import Problems
from closeloop.config.yamlsrc import Loc, Source

_REFERENCE = re.compile(r"\$\{([^}:]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MIN_SECRET = 4
"""Environment values shorter than this are not masked in messages (masking 'US' would garble text)."""


def interpolate(source: Source, environ: Mapping[str, str], problems: Problems) -> None:
    """Replace references in every string value of ``source``; unset variables without a default are problems.

    Every substituted value is remembered in ``problems.secrets`` so that no message ever shows it.
    """
    source.data = _walk(source.data, (), source, environ, problems)


def _walk(value: Any, loc: Loc, source: Source, environ: Mapping[str, str], problems: Problems) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*loc, k), source, environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*loc, i), source, environ, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _substitute(value, loc, source, environ, problems)
    return value


def _substitute(text: str, loc: Loc, source: Source, environ: Mapping[str, str], problems: Problems) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if not _NAME.fullmatch(name):
            source.problem(
                problems,
                loc,
                f"bad environment reference {match.group(0)!r}; use ${{NAME}} or "
                "${NAME:-default} with NAME made of letters, digits and _",
            )
            return ""
        found = environ.get(name)
        if found is None or (default is not None and found == ""):
            if default is None:
                source.problem(
                    problems,
                    loc,
                    f"environment variable {name} is not set (set it, or give a default: ${{{name}:-default}})",
                )
                return ""
            return default
        if len(found) >= _MIN_SECRET:
            problems.secrets.add(found)
        return found

    return _REFERENCE.sub(replace, text)
