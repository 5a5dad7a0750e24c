"""The SVG charts: pure functions, so tested without a server."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from saassy.web.charts import Point, bar_chart, nice_ticks, tick_label

SVG = "{http://www.w3.org/2000/svg}"


def chart(points: list[Point], **extra: str) -> ET.Element:
    values = {
        "title": "Tasks per day",
        "description": "One bar per day.",
        "y_label": "Tasks",
        "x_label": "Day",
        "chart_id": "c",
    } | extra
    return ET.fromstring(str(bar_chart(points, **values)))  # noqa: S314 - our own output


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0.0, 1.0]),
        (3, [0.0, 1.0, 2.0, 3.0]),
        (7, [0.0, 2.0, 4.0, 6.0, 8.0]),
        (100, [0.0, 25.0, 50.0, 75.0, 100.0]),
        (0.3, [0.0, 0.1, 0.2, 0.3]),
        (1234, [0.0, 500.0, 1000.0, 1500.0]),
    ],
)
def test_ticks_are_round_and_cover_the_maximum(maximum: float, ticks: list[float]) -> None:
    assert nice_ticks(maximum) == ticks
    assert nice_ticks(maximum)[-1] >= maximum


def test_tick_labels_drop_needless_decimals() -> None:
    assert tick_label(2000.0) == "2,000"
    assert tick_label(0.25) == "0.25"
    assert tick_label(0.1) == "0.1"


def test_one_bar_per_point_with_its_value_as_a_tooltip() -> None:
    points = [Point(f"Dec {n}", float(2 * n)) for n in range(1, 6)]
    root = chart(points)
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 5
    assert [bar.find(f"{SVG}title").text for bar in bars][-1] == "Dec 5: 10"  # type: ignore[union-attr]
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert heights == sorted(heights)
    assert heights[0] > 0
    # The tallest bar reaches the top tick (10 -> ticks 0, 2.5, ... 10): the plot's full height.
    assert heights[-1] == pytest.approx(220 - 12 - 44)


def test_the_chart_is_labelled_for_assistive_technology() -> None:
    root = chart([Point("Dec 1", 1.0)], chart_id="chart-x")
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-x-title chart-x-desc"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None
    assert title.get("id") == "chart-x-title"
    assert title.text == "Tasks per day"
    assert desc is not None
    assert desc.text == "One bar per day."
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "axis-label"]
    assert axis == ["Day", "Tasks"]


def test_labels_thin_out_on_a_month_of_days() -> None:
    root = chart([Point(f"Dec {n}", 1.0) for n in range(1, 32)])
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert 5 <= len(labels) < 31
    assert labels[0].text == "Dec 1"


def test_an_empty_or_all_zero_series_still_draws_axes() -> None:
    root = chart([])
    assert root.findall(f"{SVG}rect") == []
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"] == ["0", "1"]
    zeros = chart([Point("Dec 1", 0.0), Point("Dec 2", 0.0)])
    assert [float(r.get("height", "1")) for r in zeros.findall(f"{SVG}rect")] == [0.0, 0.0]


def test_text_is_escaped() -> None:
    root = chart([Point("<b>", 1.0)], title="<script>alert(1)</script>")
    assert root.find(f"{SVG}title").text == "<script>alert(1)</script>"  # type: ignore[union-attr]
    assert "<script>" not in str(
        bar_chart(
            [Point("a", 1)], title="<script>", description="", y_label="", x_label="", chart_id="c"
        )
    )
