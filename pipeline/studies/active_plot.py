"""The active-learning study's figure: eval accuracy against labels, a line per strategy with
its 95 % interval, and `make curve`'s random curve and the all-data accuracy on the same axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.io import atomic_path

SIZE = (7.0, 4.5)  # inches; at 120 dpi an 840 x 540 image
DPI = 120


def study_figure(result: dict[str, Any], path: Path) -> None:
    """Write the study's PNG (log x-axis: the early sizes are where strategies differ most)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI, layout="constrained")
    ax.set(
        title=f"Active learning: {result['run']}",
        xlabel="labels",
        ylabel="eval accuracy",
        xscale="log",
    )
    ax.title.set_size("small")
    for strategy, entry in result["strategies"].items():
        low, high = zip(*entry["ci95"], strict=True)
        width = 2.5 if strategy == result["default"] else 1.2
        style = {"color": "black"} if strategy == "random" else {}
        ax.plot(entry["labels"], entry["mean"], label=strategy, linewidth=width, **style)
        ax.fill_between(entry["labels"], low, high, alpha=0.15, **style)
    rows = result["random_curve"][:-1]  # the last is all of train
    x = [row["n_train"] for row in rows]
    ax.errorbar(
        x,
        [row["mean"] for row in rows],
        yerr=[[row["mean"] - row["ci95"][0] for row in rows],
              [row["ci95"][1] - row["mean"] for row in rows]],
        fmt="s--", color="grey", capsize=3, label="make curve (random, stratified)",
    )  # fmt: skip
    ax.axhline(result["all_data"], color="grey", linestyle=":", label="all train sentences")
    ax.legend(loc="lower right", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
