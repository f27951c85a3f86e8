"""Small inline SVG charts for the HTML report: grouped bars, a funnel and diverging bars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 1000
LABEL_W = 190
VALUE_W = 110
FONT = 'font-family="inherit" font-size="13"'


@dataclass(frozen=True, slots=True)
class Series:
    """One coloured series of a bar chart."""

    name: str
    color: str


def _svg(height: float, body: Sequence[str], title: str) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle" '
        f"{FONT} {extra}>{escape(text)}</text>"
    )


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], float(LABEL_W)
    for item in series:
        parts.append(f'<rect x="{x:.1f}" y="6" width="12" height="12" rx="3" fill="{item.color}"/>')
        parts.append(_text(x + 18, 12.5, item.name, extra='fill="#3b4252"'))
        x += 30 + 7.5 * len(item.name)
    return parts


def _grid(top: float, bottom: float, scale: float, peak: Decimal, fmt: Callable[[Decimal], str]) -> list[str]:
    parts = []
    for step in range(5):
        value = peak * step / 4
        x = LABEL_W + float(value) * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#e5e9f0"/>')
        parts.append(_text(x, bottom + 12, fmt(value), anchor="middle", extra='fill="#8a94a6" font-size="11"'))
    return parts


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Sequence[Decimal]],
    fmt: Callable[[Decimal], str],
) -> str:
    """Horizontal bars: one group per category, one bar per series; ``values[category][series]``."""
    bar_h, gap, pad, top = 14.0, 3.0, 16.0, 34.0 if len(series) > 1 else 8.0
    peak = max((v for row in values for v in row), default=Decimal(0)) or Decimal(1)
    scale = (WIDTH - LABEL_W - VALUE_W) / float(peak)
    body = _legend(series) if len(series) > 1 else []
    y = top
    for category, row in zip(categories, values, strict=True):
        group_h = len(series) * (bar_h + gap) - gap
        body.append(_text(LABEL_W - 12, y + group_h / 2, category, anchor="end", extra='fill="#2e3440"'))
        for item, value in zip(series, row, strict=True):
            width = max(float(value) * scale, 1.5 if value > 0 else 0)
            tip = escape(f"{category} · {item.name}: {fmt(value)}")
            body.append(
                f'<rect x="{LABEL_W}" y="{y:.1f}" width="{width:.1f}" height="{bar_h}" rx="3" '
                f'fill="{item.color}"><title>{tip}</title></rect>'
            )
            if value:  # an empty slot says zero more quietly than a label
                body.append(_text(LABEL_W + width + 6, y + bar_h / 2 + 0.5, fmt(value), extra='fill="#4c566a"'))
            y += bar_h + gap
        y += pad - gap
    grid = _grid(top - 4, y - pad + 6, scale, peak, fmt)
    return _svg(y + 14, [*grid, *body], title)


_FUNNEL_COLORS = ("#1d4e89", "#24609f", "#2c72b4", "#3784c6", "#4595d4")
_BAR_H, _LINK_H, _CENTRE = 44.0, 30.0, WIDTH / 2


def _funnel_link(y: float, above: float, below: float, rate: Decimal | None) -> list[str]:
    left, right = _CENTRE - above / 2, _CENTRE + above / 2
    points = f"{left:.1f},{y - _LINK_H:.1f} {right:.1f},{y - _LINK_H:.1f} "
    points += f"{_CENTRE + below / 2:.1f},{y:.1f} {_CENTRE - below / 2:.1f},{y:.1f}"
    label = "n/a" if rate is None else f"{rate}% converted"
    style = 'fill="#3b4252" font-size="12"'
    return [
        f'<polygon points="{points}" fill="#dbe7f5"/>',
        _text(_CENTRE, y - _LINK_H / 2, label, anchor="middle", extra=style),
    ]


def _funnel_stage(y: float, width: float, name: str, count: int, color: str) -> list[str]:
    inside = width >= 170
    x = _CENTRE if inside else _CENTRE + width / 2 + 10
    style = f'fill="{"#ffffff" if inside else "#2e3440"}" font-weight="700" font-size="16"'
    return [
        f'<rect x="{_CENTRE - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" height="{_BAR_H}" rx="6" '
        f'fill="{color}"><title>{escape(f"{name}: {count:,}")}</title></rect>',
        _text(LABEL_W - 130, y + _BAR_H / 2, name, extra='fill="#2e3440" font-weight="600"'),
        _text(x, y + _BAR_H / 2, f"{count:,}", anchor="middle" if inside else "start", extra=style),
    ]


def funnel(title: str, stages: Sequence[tuple[str, int]], rates: Sequence[Decimal | None]) -> str:
    """A centred funnel: one bar per stage, its width by count, conversion rates between stages."""
    peak = max((count for _, count in stages), default=0) or 1
    widths = [max(640 * count / peak, 4.0) for _, count in stages]
    body: list[str] = []
    for i, ((name, count), width) in enumerate(zip(stages, widths, strict=True)):
        y = i * (_BAR_H + _LINK_H)
        if i:
            body += _funnel_link(y, widths[i - 1], width, rates[i - 1])
        body += _funnel_stage(y, width, name, count, _FUNNEL_COLORS[i % len(_FUNNEL_COLORS)])
    return _svg(len(stages) * (_BAR_H + _LINK_H) - _LINK_H + 4, body, title)


def diverging_bars(title: str, items: Sequence[tuple[str, Decimal]], fmt: Callable[[Decimal], str]) -> str:
    """Horizontal bars around a zero line: green for positive values, red for negative ones."""
    bar_h, gap = 22.0, 10.0
    low = min((v for _, v in items), default=Decimal(0)).min(Decimal(0))
    high = max((v for _, v in items), default=Decimal(0)).max(Decimal(0))
    span = float(high - low) or 1.0
    plot_w = WIDTH - LABEL_W - 2 * VALUE_W
    zero = LABEL_W + VALUE_W + float(-low) / span * plot_w
    body = []
    for i, (label, value) in enumerate(items):
        y = i * (bar_h + gap) + 6
        width = abs(float(value)) / span * plot_w
        x = zero if value >= 0 else zero - width
        color = "#2e9e5b" if value >= 0 else "#d1495b"
        body.append(_text(LABEL_W - 12, y + bar_h / 2, label, anchor="end", extra='fill="#2e3440"'))
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 1.5):.1f}" height="{bar_h}" rx="3" '
            f'fill="{color}"><title>{escape(f"{label}: {fmt(value)}")}</title></rect>'
        )
        tx, anchor = (x + width + 6, "start") if value >= 0 else (x - 6, "end")
        body.append(_text(tx, y + bar_h / 2, fmt(value), anchor=anchor, extra='fill="#3b4252" font-weight="600"'))
    bottom = len(items) * (bar_h + gap) + 6
    axis = f'x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{bottom:.1f}"'
    body.append(f'<line {axis} stroke="#4c566a" stroke-width="1.5"/>')
    return _svg(bottom + 4, body, title)


def columns(title: str, items: Sequence[tuple[str, Decimal]], fmt: Callable[[Decimal], str], color: str) -> str:
    """Vertical columns, one per item in order (a time series), labelled below; slanted labels when many."""
    plot_h, top, left = 220.0, 24.0, 70.0
    slot = (WIDTH - left - 10) / max(len(items), 1)
    peak = max((v for _, v in items), default=Decimal(0)) or Decimal(1)
    base = top + plot_h
    body = []
    for step in range(5):
        y = base - plot_h * step / 4
        body.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{WIDTH - 10:.1f}" y2="{y:.1f}" stroke="#e5e9f0"/>')
        body.append(_text(left - 8, y, fmt(peak * step / 4), anchor="end", extra='fill="#8a94a6" font-size="11"'))
    slanted = len(items) > 12
    for i, (label, value) in enumerate(items):
        height = float(value / peak) * plot_h
        x, width = left + i * slot + slot * 0.15, slot * 0.7
        tip = escape(f"{label}: {fmt(value)}")
        body.append(
            f'<rect x="{x:.1f}" y="{base - height:.1f}" width="{width:.1f}" height="{height:.1f}" rx="3" '
            f'fill="{color}"><title>{tip}</title></rect>'
        )
        if value and not slanted:  # many slim columns: the figures are in the table below
            body.append(_text(x + width / 2, base - height - 9, fmt(value), anchor="middle", extra='fill="#4c566a"'))
        cx, ly = x + width / 2, base + 14
        turn = f'transform="rotate(-40 {cx:.1f} {ly:.1f})"' if slanted else ""
        body.append(_text(cx, ly, label, anchor="end" if slanted else "middle", extra=f'fill="#2e3440" {turn}'))
    return _svg(base + (58 if slanted else 26), body, title)
