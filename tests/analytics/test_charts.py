"""Chart titles: wrapped to the figure, so a long class name never pushes the dataset or the figures off it."""

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labelqa.analytics.charts import DPI, TITLE_LINES, TITLE_POINTS, chart_title

LONG_TITLES = {
    "lower case": "pets · " + "very long class name " * 10 + "· unanimous",
    "capitals": "pets · " + "NORTHERN WHITE CHEEKED GIBBON MOUNTAIN HABITAT " * 4 + "· unanimous",
    "widest letters, no spaces": "pets · " + "W" * 200,
}


@pytest.mark.parametrize("title", LONG_TITLES.values(), ids=LONG_TITLES.keys())
def test_a_long_title_stays_inside_the_figure_and_keeps_its_detail(title):
    figure = Figure(figsize=(6, 4), dpi=DPI, layout="constrained")
    text = figure.subplots().set_title(chart_title(title, "ECE 3.2 points"), fontsize=TITLE_POINTS)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    drawn = text.get_window_extent(canvas.get_renderer())
    assert 0 <= drawn.x0 and drawn.x1 <= figure.bbox.width, (drawn.x0, drawn.x1)
    lines = text.get_text().split("\n")
    assert lines[0].startswith("pets · ") and lines[-1] == "ECE 3.2 points"
    assert len(lines) <= TITLE_LINES + 1


def test_a_short_title_is_left_as_it_is():
    assert chart_title("pets · Dog · majority") == "pets · Dog · majority"
    assert chart_title("pets · Dog · majority", "ECE 1.0 points") == "pets · Dog · majority\nECE 1.0 points"
