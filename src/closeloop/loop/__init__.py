"""The closed loop: original source, revenue ledger, contact rollups, touchpoints, attribution and reports.

Pure functions over small frozen dataclasses; storage and vendor I/O live elsewhere.
"""

from closeloop.loop.attribution import Credit, Milestones, Model, attribute, split_cents, weights
from closeloop.loop.ledger import (
    DealState,
    EntryKind,
    LedgerEntry,
    Position,
    ledger_delta,
    position,
    positions,
)
from closeloop.loop.money import Rates, UnknownCurrency, cents
from closeloop.loop.render import Format, render, render_text
from closeloop.loop.report import (
    AttributedRow,
    ContactFacts,
    DealStatsRow,
    FunnelRow,
    FunnelStage,
    Report,
    ReportInput,
    RoiRow,
    build_report,
)
from closeloop.loop.rollups import ROLLUP_NAMES, Rollup, rollups_for
from closeloop.loop.source import OriginalSource, merge_original_source
from closeloop.loop.spend import SpendFileError, SpendRow, parse_spend_csv
from closeloop.loop.touchpoints import (
    Channel,
    Touch,
    TouchKind,
    channel_of_source,
    derive_channel,
    make_touch,
    touch_from_original_source,
    touch_from_touchpoint,
)

__all__ = [
    "ROLLUP_NAMES",
    "AttributedRow",
    "Channel",
    "ContactFacts",
    "Credit",
    "DealState",
    "DealStatsRow",
    "EntryKind",
    "Format",
    "FunnelRow",
    "FunnelStage",
    "LedgerEntry",
    "Milestones",
    "Model",
    "OriginalSource",
    "Position",
    "Rates",
    "Report",
    "ReportInput",
    "RoiRow",
    "Rollup",
    "SpendFileError",
    "SpendRow",
    "Touch",
    "TouchKind",
    "UnknownCurrency",
    "attribute",
    "build_report",
    "cents",
    "channel_of_source",
    "derive_channel",
    "ledger_delta",
    "make_touch",
    "merge_original_source",
    "parse_spend_csv",
    "position",
    "positions",
    "render",
    "render_text",
    "rollups_for",
    "split_cents",
    "touch_from_original_source",
    "touch_from_touchpoint",
    "weights",
]
