"""The report's figures, from the summary's numbers (nothing recomputed): each a PNG as a data URI."""

from __future__ import annotations

import base64
import io

from pipelines.core.confidence import AGREEMENT_BUCKETS


def _figure(width: float = 6.0, height: float = 3.0, panels: int = 1):
    """A figure and its axes: one Axes, or a list of `panels` side by side."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the figure goes into the page
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width, height), dpi=100, squeeze=False)
    return fig, (axes[0][0] if panels == 1 else list(axes[0]))


def _data_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def counts_bars(counts: dict[str, int], title: str) -> str:
    """A horizontal bar per name (statuses, verdicts), with its count."""
    names = [n for n, v in counts.items() if v]
    fig, ax = _figure(height=max(1.6, 0.4 * len(names) + 0.8))
    bars = ax.barh(names[::-1], [counts[n] for n in names][::-1], color="#4c72b0")
    ax.bar_label(bars, padding=3)
    ax.set_title(title)
    ax.set_xlabel("rows")
    return _data_uri(fig)


def reliability(calibration: dict) -> str | None:
    """Accuracy per confidence bucket, one panel per signal, each bar labeled with its rows; None when
    no bucket has an accuracy (no gold)."""
    signals = {s: b for s, b in calibration.items() if any(c["accuracy"] is not None for c in b.values())}
    if not signals:
        return None
    fig, axes = _figure(width=6.0 * len(signals), height=3.2, panels=len(signals))
    axes = axes if len(signals) > 1 else [axes]
    for ax, (signal, buckets) in zip(axes, signals.items()):
        names = list(buckets)
        accuracy = [buckets[n]["accuracy"] or 0.0 for n in names]
        bars = ax.bar(names, accuracy, color="#55a868")
        ax.bar_label(bars, labels=[f"{buckets[n]['rows']} rows" for n in names], padding=2, fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_title(f"accuracy by {signal}")
        ax.set_ylabel("accuracy of rows with gold")
        ax.tick_params(axis="x", labelsize=8)
    return _data_uri(fig)


def coverage_accuracy(agreement: dict) -> str | None:
    """The coverage-accuracy curve an export.min_agreement filter buys: keeping the rows of each
    agreement bucket and those above it (from the most agreeing down), the share of rows kept against
    their accuracy, each point marked with the filter that keeps them. From the summary's agreement
    buckets; None without gold."""
    names = [name for _, name in AGREEMENT_BUCKETS]
    # the filter that keeps a bucket and those above: its lower end (the bucket before's upper bound)
    marks = {names[0]: "all rows", names[1]: "agreement > 0",
             **{name: f"min_agreement={AGREEMENT_BUCKETS[i - 1][0]:g}" for i, name in enumerate(names) if i > 1}}
    cells = [(name, agreement[name]) for name in reversed(names) if name in agreement]
    total = sum(cell["rows"] for _, cell in cells)
    if not total or all(cell["accuracy"] is None for _, cell in cells):
        return None
    points, kept, right, judged = [], 0, 0.0, 0
    for name, cell in cells:
        kept += cell["rows"]
        if cell["accuracy"] is not None:
            right += cell["accuracy"] * cell["rows"]
            judged += cell["rows"]
        if judged:
            points.append((marks[name], kept / total, right / judged))
    fig, ax = _figure()
    ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", color="#c44e52")
    for mark, coverage, accuracy in points:
        ax.annotate(mark, (coverage, accuracy), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("coverage (share of rows kept)")
    ax.set_ylabel("accuracy of the rows kept")
    ax.set_title("coverage against accuracy, by export.min_agreement")
    return _data_uri(fig)


def rows_per_second(timeline: list) -> str | None:
    """Rows written against time, from the run's progress (a point per committed piece)."""
    if len(timeline) < 2:
        return None
    fig, ax = _figure(height=2.6)
    ax.plot([t for t, _ in timeline], [rows for _, rows in timeline], color="#8172b2")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("rows written")
    ax.set_title("rows written over the run")
    return _data_uri(fig)
