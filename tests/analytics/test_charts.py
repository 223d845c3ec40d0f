"""Chart titles: wrapped to the figure, so a long class name never pushes the dataset or the figures off it."""

from labelqa.analytics.charts import TITLE_LINES, TITLE_WIDTH, chart_title


def test_a_long_class_name_wraps_and_keeps_the_dataset_and_the_detail():
    label = "Very long class name " * 10  # 210 characters, as model label files hold
    title = chart_title(f"pets · {label} · unanimous", "ECE 3.2 points")
    lines = title.split("\n")
    assert lines[0].startswith("pets · Very long class name")
    assert lines[-1] == "ECE 3.2 points"
    assert all(len(line) <= TITLE_WIDTH for line in lines)
    assert " ".join(lines[:-1]).endswith("unanimous")


def test_a_name_without_spaces_is_broken_and_an_endless_one_cut():
    lines = chart_title("x" * (TITLE_WIDTH * (TITLE_LINES + 2))).split("\n")
    assert len(lines) == TITLE_LINES and all(len(line) <= TITLE_WIDTH for line in lines)
    assert lines[-1].endswith("…")
    assert chart_title("pets · Dog · majority") == "pets · Dog · majority"
