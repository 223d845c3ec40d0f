"""PNG charts of calibration and thresholds, drawn server-side with matplotlib's Agg renderer.

Pure drawing over the dicts and lists of the statistics module: no Django, no database.
Figures are built with `matplotlib.figure.Figure`, never pyplot, so no global state is shared
between the threads of a web server.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

ACCENT = "#1f5fbf"  # --accent in labelqa.css
BAD = "#c62828"  # --bad
MUTED = "#57606a"  # --muted
DPI = 100
TITLE_POINTS = 10
# A title line's width at most, in pixels of the 6-inch figures (600 at DPI 100), margins left.
TITLE_PIXELS = 560
TITLE_LINES = 4


def chart_title(text: str, detail: str = "") -> str:
    """Wrap a title (model label files hold 200-character class names) to the figure, `detail` on a line of its own.

    Measured, not counted: at one count of characters a line of capitals ran off both sides where lower case fit.
    """
    measure = RendererAgg(TITLE_PIXELS, 100, DPI)
    font = FontProperties(size=TITLE_POINTS)

    def fits(line: str) -> bool:
        return measure.get_text_width_height_descent(line, font, ismath=False)[0] <= TITLE_PIXELS

    for width in range(90, 9, -5):
        lines = textwrap.wrap(text, width, max_lines=TITLE_LINES, placeholder=" …")
        if all(map(fits, lines)):
            break
    return "\n".join([*lines, detail] if detail else lines)


def reliability_png(table: dict, *, title: str) -> bytes:
    """Return a reliability diagram of a `stats.calibration` table as PNG.

    Top: observed accuracy against mean confidence per bin, percent, with the diagonal of perfect
    calibration and each bin's count over its bar. Bottom: how many reviewed items each bin holds.
    """
    bins = table["bins"]
    figure = Figure(figsize=(6, 5.2), dpi=DPI, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    width = 100 * (bins[0]["high"] - bins[0]["low"]) if bins else 10
    lows = [100 * b["low"] for b in bins]
    filled = [b for b in bins if b["count"]]
    top.plot([0, 100], [0, 100], linestyle="--", color=MUTED, linewidth=1, label="perfect calibration")
    top.bar(
        [100 * b["low"] for b in filled],
        [100 * b["accuracy"] for b in filled],
        width=width,
        align="edge",
        color=ACCENT,
        alpha=0.75,
        edgecolor="white",
        label="observed accuracy",
    )
    top.plot(
        [100 * b["mean_confidence"] for b in filled],
        [100 * b["accuracy"] for b in filled],
        marker="o",
        linestyle="",
        color="black",
        markersize=4,
        label="at the bin's mean confidence",
    )
    for b in filled:
        top.annotate(
            f"n={b['count']}",
            (100 * b["low"] + width / 2, 100 * b["accuracy"]),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=7,
            color=MUTED,
        )
    ece = table.get("ece")
    ece_text = "no reviewed items" if ece is None else f"ECE {100 * ece:.1f} points"
    top.set_title(chart_title(title, ece_text), fontsize=TITLE_POINTS, parse_math=False)
    top.set_ylabel("observed accuracy (%)")
    top.set_ylim(0, 105)
    top.legend(loc="upper left", fontsize=7, frameon=False)
    bottom.bar(lows, [b["count"] for b in bins], width=width, align="edge", color=MUTED, edgecolor="white")
    bottom.set_ylabel("reviewed")
    bottom.set_xlabel("model confidence (%)")
    bottom.set_xlim(0, 100)
    return _png(figure)


def threshold_curve_png(
    curve: Sequence[tuple[float, int, float]],
    *,
    title: str,
    target_error: float,
    certified: float | None,
) -> bytes:
    """Return the bounded error against the threshold as PNG.

    `curve` is `stats.threshold_curve`'s (t, reviewed at or above t, upper error bound). The
    horizontal line is the target error; the vertical one the certified threshold, when there is one.
    """
    figure = Figure(figsize=(6, 4), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    if curve:
        ts, reviewed, upper = zip(*curve, strict=True)
        axes.step(ts, [100 * u for u in upper], where="post", color=ACCENT, label="95% upper bound of the error")
        evidence = axes.twinx()
        evidence.plot(ts, reviewed, color=MUTED, linewidth=1, linestyle=":", label="reviewed at or above")
        evidence.set_ylabel("reviewed at or above the threshold", color=MUTED, fontsize=8)
        evidence.tick_params(axis="y", labelcolor=MUTED, labelsize=7)
    else:
        axes.text(0.5, 0.5, "no reviewed items", transform=axes.transAxes, ha="center", color=MUTED)
    axes.axhline(100 * target_error, color=BAD, linestyle="--", linewidth=1, label=f"target {100 * target_error:.1f}%")
    if certified is not None:
        axes.axvline(certified, color="black", linewidth=1, label=f"certified threshold {certified}")
    axes.set_title(chart_title(title), fontsize=TITLE_POINTS, parse_math=False)  # labels are data: "$" is not math
    axes.set_xlabel("threshold: confidence (%) at or above")
    axes.set_ylabel("error bound (%)")
    axes.set_ylim(0, 100)
    axes.legend(loc="best", fontsize=7, frameon=False)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
