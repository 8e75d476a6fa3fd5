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
