"""The plot in docs/performance.md, from the benchmarks' JSON: rows/s of the contenders, and peak
memory of the dry run against rows.

    .venv/bin/python bench/plot.py [--contenders docs/bench/contenders-2000.json]
                                   [--dry-run docs/bench/dry-run.json] [--out docs/performance.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contenders", type=Path, default=REPO / "docs" / "bench" / "contenders-2000.json")
    parser.add_argument("--dry-run", type=Path, default=REPO / "docs" / "bench" / "dry-run.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contenders = json.loads(args.contenders.read_text())
    dry_run = json.loads(args.dry_run.read_text())
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4.2))

    names = [n for n in contenders["results"] if n != "job_dry_run"]  # no engine: not on the same scale
    rates = [contenders["results"][n]["rows_per_s"] for n in names]
    medians = [r["median"] for r in rates]
    spread = [[m - r["min"] for m, r in zip(medians, rates)], [r["max"] - m for m, r in zip(medians, rates)]]
    speed.bar(names, medians, yerr=spread, capsize=4, color="#4c72b0")
    small, large = contenders["rows"]
    speed.set_title(f"rows/s from first to last row ({small} -> {large} rows, median, min-max)")
    speed.set_ylabel("rows/s (marginal)")
    speed.tick_params(axis="x", labelrotation=15)

    sizes = dry_run["rows"]
    result = dry_run["results"]["job_dry_run"]
    for who, label, style in (("driver", "driver", "o-"), ("workers", "every other process", "s--")):
        memory.plot(sizes, [result[f"{who}_peak_mib_{n}"]["median"] for n in sizes], style, label=f"{label}, peak RSS")
    memory.set_xscale("log")
    memory.set_xlabel("input rows (dry_run=true)")
    memory.set_ylabel("MiB")
    memory.set_ylim(bottom=0)
    memory.set_title("memory against rows, " + " ".join(dry_run.get("job_set", [])))
    memory.legend()

    fig.suptitle("this job, bare vLLM and ray.data.llm on 2 CPU cores, demo model (docs/performance.md)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
