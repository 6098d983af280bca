"""The speed suite's chart: time relative to s5cmd per case and tool, drawn from the page's table.

Reading the table back from docs/benchmarks.md (rather than the run's objects) keeps the picture
and the numbers beside it the same by construction. ``python -m bench.chart [PAGE] [PNG]`` redraws
it from a page; ``python -m bench --suite speed`` calls :func:`draw` after writing the page.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

HEADING = "## Speed suite"


def speed_rows(page: str) -> list[dict[str, str]]:
    """The rows of the speed suite's table, as column name -> cell text."""
    section = page.partition(HEADING)[2].splitlines()
    start = next((n for n, line in enumerate(section) if line.startswith("|")), len(section))
    lines = []
    for line in section[start:]:
        if not line.startswith("|"):
            break
        lines.append(line)
    if len(lines) < 3:
        raise ValueError(f"no speed table under {HEADING!r}")
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append(dict(zip(header, cells, strict=False)))
    return rows


def draw(page: Path, png: Path) -> None:
    """Draw one panel per (items, way), bars of time / s5cmd per tool and latency."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    panels: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in speed_rows(page.read_text()):
        panels[f"{row['items']} {row['way']}"][row["tool"]][row["latency"]] = float(
            row["time / s5cmd"]
        )
    figure, _ = pyplot.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), sharey=True)
    for axis, (title, tools) in zip(figure.axes, panels.items(), strict=True):
        latencies = sorted({latency for values in tools.values() for latency in values})
        width = 0.8 / max(1, len(latencies))
        for n, latency in enumerate(latencies):
            heights = [values.get(latency, 0.0) for values in tools.values()]
            places = [index + n * width for index in range(len(tools))]
            axis.bar(places, heights, width, label=latency)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks([index + width * (len(latencies) - 1) / 2 for index in range(len(tools))])
        axis.set_xticklabels(list(tools), rotation=35, ha="right", fontsize=7)
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=7)
    axes_list = list(figure.axes)
    axes_list[0].set_ylabel("time / s5cmd (lower is faster)")
    figure.tight_layout()
    figure.savefig(png, dpi=110)
    pyplot.close(figure)


def main(argv: list[str]) -> int:
    page = Path(argv[0]) if argv else Path("docs/benchmarks.md")
    png = Path(argv[1]) if len(argv) > 1 else page.with_name("benchmarks-speed.png")
    draw(page, png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
