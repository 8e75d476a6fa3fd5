"""The SVG charts: bars scaled to the largest value, each with its number written beside it."""

import pytest

from reports.charts import BAR_LABEL_W, BAR_VALUE_W, WIDTH, bar_chart


def test_bars_scale_to_the_largest_value_and_write_each_value_beside_its_bar():
    chart = bar_chart(["New", "MQL", "SQL"], [("Median", [2.0, 8.0, None]), ("p90", [4.0, 16.0, 0.0])],
                      text=lambda v: f"{v:.1f} d")
    full = WIDTH - BAR_LABEL_W - BAR_VALUE_W
    new, mql, sql = chart.groups
    assert [bar.width for bar in mql.bars] == [full / 2, full]  # 16 days is the longest bar
    assert [bar.width for bar in new.bars] == [full / 8, full / 4]
    assert [(bar.width, bar.text) for bar in sql.bars] == [(0, "–"), (0, "0.0 d")]  # none vs. a real zero
    assert [bar.outlined for bar in new.bars] == [False, True]  # the second series is told apart without colour
    assert new.bars[0].text_x == BAR_LABEL_W + full / 8 + 4
    assert chart.series == [("Median", False), ("p90", True)]
    assert chart.height > 3 * 20


def test_a_tiny_value_still_shows_and_all_zero_draws_no_bar():
    chart = bar_chart(["a", "b"], [("n", [1, 100_000])])
    assert chart.groups[0].bars[0].width == 1
    assert [g.bars[0].width for g in bar_chart(["a"], [("n", [0])]).groups] == [0]


def test_three_series_are_refused():
    with pytest.raises(ValueError, match="one or two series"):
        bar_chart(["a"], [("x", [1]), ("y", [1]), ("z", [1])])
