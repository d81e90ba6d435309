"""The report's plots: score against step and against time, per trace, new bests and mode switches marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: plots are files
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401


def plot_scores(data: dict, out_dir: Path) -> list[Path]:
    """score_vs_step.png and score_vs_time.png; empty axes with a note while nothing is scored yet."""
    run = data["run"]
    start = run.get("started_at") or 0
    scored = [s for s in data["steps"] if s.get("score") is not None and s.get("step") is not None]
    paths = []
    for name, xlabel, x_of in (("score_vs_step", "step", lambda s: s["step"] + 1),
                               ("score_vs_time", "minutes since start",
                                lambda s: (s.get("finished_at", start) - start) / 60)):
        fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
        traces = sorted({s["trace"] for s in scored})
        for t in traces:
            pts = sorted((x_of(s), s) for s in scored if s["trace"] == t)
            xs, ys = [p[0] for p in pts], [p[1]["score"] for p in pts]
            line, = ax.plot(xs, ys, "-", alpha=0.5, label=f"trace {t}")
            colour = line.get_color()
            for x, s in pts:
                ax.plot(x, s["score"], "o", color=colour, fillstyle="full" if s.get("accepted") else "none")
                if s.get("improved_best"):
                    ax.plot(x, s["score"], "*", color="gold", markersize=14, markeredgecolor="black")
        for s in data["steps"]:
            if s.get("switch") and s.get("step") is not None:
                x = x_of(s)
                ax.axvline(x, color="grey", linestyle="--", linewidth=1)
                ax.annotate(s["switch"].split(":")[0], (x, 1), xycoords=("data", "axes fraction"), fontsize=7,
                            rotation=90, va="top", ha="right", color="grey")
        if not scored:
            ax.text(0.5, 0.5, "no scored step yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{run.get('metric', 'score')} ({run.get('direction', '')})")
        ax.set_title(f"{run.get('task', '')}: validation score (filled: accepted, star: new best)", fontsize=10)
        if traces:
            ax.legend(fontsize=8)
        if name == "score_vs_step":
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
