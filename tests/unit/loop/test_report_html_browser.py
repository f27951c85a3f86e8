"""The HTML report in headless Chromium at 1,400 px: colourful charts, not a blank page, and no table cut."""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from closeloop.loop import Position, build_report, render, render_text

from .test_loop_report_sections import pipeline_input

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1400, 4000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium"),
]


def read_png(path: Path) -> tuple[int, int, list[bytes], int]:
    """Width, height, rows of RGB pixels and bytes per pixel (3) of a screenshot, decoded by Pillow."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        data = rgb.tobytes()
    stride = width * 3
    return width, height, [data[y * stride : (y + 1) * stride] for y in range(height)], 3


def chromium(tmp_path: Path, page: Path, *options: str) -> str:
    """Run headless Chromium on ``page`` at WIDTH x HEIGHT with ``options``; its standard output."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        *options,
        page.as_uri(),
    ]
    done = subprocess.run(command, check=True, capture_output=True, timeout=120, text=True)  # noqa: S603  # fixed argv
    return done.stdout


def test_report_renders_with_colourful_charts(tmp_path: Path) -> None:
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    render(build_report(pipeline_input(), detail=True), "html", page)
    chromium(tmp_path, page, f"--screenshot={shot}")
    width, height, rows, bpp = read_png(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    chart_area = rows[250:HEIGHT]  # below the headline figures: revenue over time, by source, campaigns, funnel
    colours = {row[x : x + 3] for row in chart_area[::3] for x in range(0, width * bpp, bpp * 3)}
    saturated = {c for c in colours if max(c) - min(c) > 60}
    assert len(colours) > 20, "the chart area is nearly blank"
    assert len(saturated) >= 6, f"expected coloured bars, found {len(saturated)} saturated colours"


# Marks each table or headline figure whose content is wider than its box (cut, or to scroll) on <body data-cut>.
PROBE = """<script>addEventListener("load", () => {
  const boxes = [...document.querySelectorAll(".scroll, .kpi .value")];
  const name = (b) => (b.closest("section.card") || b.closest(".kpi")).querySelector("h2, .label").textContent;
  const cut = boxes.filter((b) => b.scrollWidth > b.clientWidth)
    .map((b) => name(b) + " " + b.scrollWidth + ">" + b.clientWidth);
  document.body.setAttribute("data-tables", String(boxes.length));
  document.body.setAttribute("data-cut", cut.join(" | ") || "none");
});</script>"""


def test_every_table_and_figure_reads_whole_at_1400_px(tmp_path: Path) -> None:
    report = build_report(pipeline_input(), detail=True)
    long_names = {"D1": "Acme Corporation worldwide rollout, phase two", "D9": "Globex pilot for the EMEA region"}
    labels = {"c1": "first.last-name@a-long-company-domain.example.com"}
    big = Position("D10", Decimal("12345678.90"), "EUR", Decimal("12345678.90"), None, ("c1",))
    inp = pipeline_input()
    inp = replace(inp, deal_names=long_names, contact_labels=labels, open_deals=(*inp.open_deals, big))
    wide = build_report(inp, detail=True)
    for name, each in (("report", report), ("wide", wide)):
        page = tmp_path / f"{name}.html"
        page.write_text(render_text(each, "html").replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = chromium(tmp_path, page, "--dump-dom")
        tables = re.search(r'data-tables="(\d+)"', dom)
        assert tables is not None
        assert int(tables.group(1)) >= 10, "the probe found no tables"
        cut = re.search(r'data-cut="([^"]*)"', dom)
        assert cut is not None
        assert html.unescape(cut.group(1)) == "none", f"{name}: columns cut at {WIDTH} px"
