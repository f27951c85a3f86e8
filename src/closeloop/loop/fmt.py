"""Shared formatting of report figures for people (tables and HTML)."""

from __future__ import annotations

from decimal import Decimal

from closeloop.loop.touchpoints import Channel

DASH = "–"


def money(value: Decimal | None) -> str:
    """An amount with thousands separators and cents ("12,400.50")."""
    return DASH if value is None else f"{value:,.2f}"


def percent(value: Decimal | None) -> str:
    """A percentage with one decimal ("66.7%")."""
    return DASH if value is None else f"{value}%"


def number(value: Decimal | int | None) -> str:
    """A count; a fractional one (attributed deals, days) keeps the decimals it was given, never rounded to 0."""
    if value is None:
        return DASH
    return f"{value:,}"


def source_label(key: str) -> str:
    """A source key as people write it: a channel's label, else the key itself."""
    return Channel(key).label if key in {c.value for c in Channel} else key.capitalize()
