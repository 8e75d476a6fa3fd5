"""Charts drawn on the server as SVG: no script, no colour needed to read them (each series has its own line style
and marker, every chart has a legend in words and its numbers in a table beside it)."""

from dataclasses import dataclass

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 36, 10, 10, 30


@dataclass(frozen=True)
class Series:
    label: str
    points: str  # "x,y x,y ..." for a <polyline>
    dots: list[tuple[float, float, int]]  # each point and its value
    dash: str  # a stroke-dasharray: "" solid, "6 4" dashed
    marker: str  # "circle" or "square"


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    series: list[Series]
    x_labels: list[tuple[float, str]]
    y_ticks: list[tuple[float, int]]
    baseline: float


def line_chart(labels: list[str], series: list[tuple[str, list[int]]]) -> LineChart:
    """Lines over the same x labels; the y axis from 0 to the largest value (at least 1)."""
    top = max([1, *(value for _, values in series for value in values)])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)

    def x(i):
        return round(LEFT + i * step, 1)

    def y(value):
        return round(TOP + plot_h - plot_h * value / top, 1)

    styles = [("", "circle"), ("6 4", "square"), ("2 3", "circle")]
    drawn = []
    for (label, values), (dash, marker) in zip(series, styles, strict=False):
        dots = [(x(i), y(v), v) for i, v in enumerate(values)]
        drawn.append(Series(label, " ".join(f"{px},{py}" for px, py, _ in dots), dots, dash, marker))
    every = max(1, round(len(labels) / 8))
    x_labels = [(x(i), text) for i, text in enumerate(labels) if i % every == 0]
    y_ticks = [(y(v), v) for v in sorted({0, top // 2, top})]
    return LineChart(WIDTH, HEIGHT, drawn, x_labels, y_ticks, TOP + plot_h)


BAR_LABEL_W, BAR_VALUE_W, BAR_H, BAR_GAP = 110, 70, 10, 8


@dataclass(frozen=True)
class Bar:
    series: str
    y: float
    width: float
    text: str  # the value as written beside the bar
    text_x: float
    text_y: float
    outlined: bool  # the second series is drawn as an outline: told apart without colour


@dataclass(frozen=True)
class BarGroup:
    label: str
    label_y: float
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    groups: list[BarGroup]
    series: list[tuple[str, bool]]  # (label, outlined) for the legend


def bar_chart(labels: list[str], series: list[tuple[str, list[float | None]]], text=str) -> BarChart:
    """Horizontal bars, one group per label and one bar per series (at most two: filled, then outlined), scaled to
    the largest value; each bar has its value written beside it by `text` (None: no bar, "–")."""
    if not 1 <= len(series) <= 2:
        raise ValueError("A bar chart draws one or two series.")
    top = max([0, *(value for _, values in series for value in values if value is not None)]) or 1
    plot_w = WIDTH - BAR_LABEL_W - BAR_VALUE_W
    group_h = BAR_H * len(series) + BAR_GAP
    groups = []
    for i, label in enumerate(labels):
        y0 = BAR_GAP / 2 + i * group_h
        bars = []
        for k, (name, values) in enumerate(series):
            value = values[i]
            width = 0 if not value else max(round(plot_w * value / top, 1), 1)
            y = y0 + k * BAR_H
            bars.append(Bar(name, y, width, "–" if value is None else text(value), BAR_LABEL_W + width + 4, y + 4,
                            outlined=k == 1))
        groups.append(BarGroup(label, y0 + BAR_H * len(series) / 2, bars))
    return BarChart(WIDTH, round(BAR_GAP / 2 + len(labels) * group_h), BAR_LABEL_W, groups,
                    [(name, k == 1) for k, (name, _) in enumerate(series)])
