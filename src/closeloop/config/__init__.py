"""Configuration: YAML loading with positions, the engine's models of config and mappings, and validation.

The engine calls :func:`load_config` and works with :class:`LoadedConfig`; every mistake in any file is a
:class:`ConfigProblem` with file, line, column and what would be valid.
"""

from closeloop.config.loader import check_config, load_config
from closeloop.config.models import (
    GOLDEN_ID,
    Connection,
    CreateRule,
    Entity,
    EntityMapping,
    FieldMapping,
    LoadedConfig,
    LoopConfig,
    OnDelete,
    Schedule,
    StateConfig,
    SystemConfig,
    SystemObjects,
    Upsert,
)
from closeloop.config.policies import (
    LOOP,
    Condition,
    Earliest,
    Filter,
    FromLoop,
    OneWay,
    Policy,
    Prefer,
    Rollup,
    TwoWay,
    WriteOnce,
)
from closeloop.config.problems import ConfigError, ConfigProblem
from closeloop.config.schema import build_schemas, write_schemas

__all__ = [
    "GOLDEN_ID",
    "LOOP",
    "Condition",
    "ConfigError",
    "ConfigProblem",
    "Connection",
    "CreateRule",
    "Earliest",
    "Entity",
    "EntityMapping",
    "FieldMapping",
    "Filter",
    "FromLoop",
    "LoadedConfig",
    "LoopConfig",
    "OnDelete",
    "OneWay",
    "Policy",
    "Prefer",
    "Rollup",
    "Schedule",
    "StateConfig",
    "SystemConfig",
    "SystemObjects",
    "TwoWay",
    "Upsert",
    "WriteOnce",
    "build_schemas",
    "check_config",
    "load_config",
    "write_schemas",
]
