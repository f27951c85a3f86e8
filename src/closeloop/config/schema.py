"""JSON Schema of the two configuration files, for editors (``closeloop schema``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from closeloop.config.documents import ConfigDoc, MappingDoc

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILES = {"closeloop": "closeloop.schema.json", "mapping": "mapping.schema.json"}
"""Schema file names in ``config/schema/``, by document kind."""


def build_schemas() -> dict[str, dict[str, Any]]:
    """``{"closeloop": ..., "mapping": ...}``: one JSON Schema per file kind."""
    return {
        "closeloop": _schema(ConfigDoc, "closeloop configuration"),
        "mapping": _schema(MappingDoc, "closeloop entity mapping"),
    }


def _schema(model: type[ConfigDoc] | type[MappingDoc], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DIALECT, **schema, "title": title}


def render(schema: dict[str, Any]) -> str:
    """The stable text of a schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write ``closeloop.schema.json`` and ``mapping.schema.json`` into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind, schema in build_schemas().items():
        path = folder / FILES[kind]
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
