"""Inline SVG plots: valid XML, escaped labels, log axes with zeros, empty input."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from facegate.bias.plots import (
    ErrorSeries,
    Estimate,
    Mark,
    Series,
    bar_chart,
    errorbar_chart,
    fmt_pct,
    histogram,
    line_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "q"'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def texts(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter() if el.tag in (f"{SVG}text", f"{SVG}title")]


def test_line_chart_is_valid_and_escapes_labels() -> None:
    svg = line_chart(
        "c1",
        HOSTILE,
        HOSTILE,
        [Series(HOSTILE, [(0.1, 0.2), (0.2, 0.4)], [(0.1, 0.2, "80")]), Series("b", [(0.1, 0.3)])],
        x_label=HOSTILE,
        y_label="y",
        marks=[Mark(0.15, HOSTILE)],
    )
    root = parse(svg)
    assert "<script" not in svg
    assert HOSTILE in texts(root)  # shown whole (escaped) in titles
    assert root.find(f"{SVG}title") is not None
    assert len(root.findall(f".//{SVG}polyline")) == 1  # "b" has one point: no line, a marker


def test_log_axes_handle_zeros_and_gaps() -> None:
    svg = line_chart(
        "det",
        "t",
        "d",
        [Series("g", [(0.0, 0.5), (0.001, 0.2), (None, None), (0.1, 0.0), (1.0, 0.0)])],
        x_label="FMR",
        y_label="FNMR",
        log_x=True,
        log_y=True,
        x_format=fmt_pct,
    )
    root = parse(svg)
    labels = texts(root)
    assert "0%" in labels  # the separate zero line of the log axis
    assert "0.1%" in labels
    assert "100%" in labels
    assert "nan" not in svg
    assert "inf" not in svg
    assert len(root.findall(f".//{SVG}polyline")) == 2  # the gap splits the line


def test_log_axis_with_only_zeros() -> None:
    root = parse(
        line_chart("z", "t", "d", [Series("g", [(1.0, 0.0), (2.0, 0.0)])],
                   x_label="x", y_label="y", log_y=True)
    )  # fmt: skip
    assert "0" in texts(root)


def test_empty_inputs_give_a_no_data_picture() -> None:
    for svg in (
        line_chart("a", "t", "d", [], x_label="x", y_label="y"),
        line_chart("b", "t", "d", [Series("g", [(None, 1.0)])], x_label="x", y_label="y"),
        errorbar_chart("c", "t", "d", ["80"], [ErrorSeries("g", [None])], x_label="", y_label=""),
        histogram("d", "t", "d", [0.0, 0.5, 1.0], [("g", [0, 0])], x_label="", y_label=""),
        bar_chart("e", "t", "d", [], [], x_label="", y_label=""),
    ):
        assert "No data to plot." in texts(parse(svg))


def test_errorbar_chart_draws_intervals_and_zero() -> None:
    svg = errorbar_chart(
        "e",
        "FMR",
        "d",
        ["Similarity 80", "Similarity 99"],
        [
            ErrorSeries(HOSTILE, [Estimate(0.01, 0.005, 0.02), Estimate(0.0, 0.0, 0.001)]),
            ErrorSeries("b", [None, Estimate(0.5, 0.4, 0.6)]),
        ],
        x_label="threshold",
        y_label="FMR",
        log_y=True,
        y_format=fmt_pct,
    )
    root = parse(svg)
    tips = texts(root)
    assert any(t.startswith(HOSTILE + " at Similarity 80: 1%") for t in tips)
    assert "0%" in tips
    assert len([t for t in tips if " at Similarity " in t]) == 3


def test_histogram_and_bars() -> None:
    root = parse(
        histogram("h", "t", "d", [0.0, 0.5, 1.0], [("mated", [3, 1]), (HOSTILE, [0, 4])],
                  x_label="distance", y_label="pairs", marks=[Mark(0.6, "Sim 80")])
    )  # fmt: skip
    assert len(root.findall(f".//{SVG}path")) == 2
    assert "Sim 80" in texts(root)
    root = parse(
        bar_chart("b", "t", "d", ["80", "99"], [("women", [0.5, None]), (HOSTILE, [0.25, 0.0])],
                  x_label="t", y_label="share", y_format=fmt_pct)
    )  # fmt: skip
    tips = texts(root)
    assert "n/a" in tips
    assert "50%" in tips
    assert len(root.findall(f".//{SVG}pattern")) == 8
