"""A finished run exits 0, every time: the labeling job on the sample, run again and again (each
run a process of its own, as a scheduler starts it), with the exit code of each.

    .venv/bin/python bench/exit_loop.py [--runs 30] [--model built:tiny-qwen2] [--out docs/bench/exit-loop.json] [--continue]

A run that printed its summary and wrote a complete output can still abort at interpreter exit
(exit 134) when an Arrow I/O thread releases a Python-backed file source while the interpreter
finalizes; a scheduler reads that as a failure and retries on a fresh GPU cluster. This counts them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--model", default="built:tiny-qwen2")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "exit-loop.json")
    parser.add_argument("--continue", dest="resume", action="store_true",
                        help="go on from the runs --out already records (same model), up to --runs in all")
    args = parser.parse_args()
    out = REPO / ".cache" / "bench" / "exit-loop"
    codes, seconds, report = [], [], {}
    if args.resume and args.out.exists():
        earlier = json.loads(args.out.read_text())
        if earlier["model"] != args.model:
            sys.exit(f"--continue: {args.out} records runs of {earlier['model']}, not {args.model}")
        codes = [int(code) for code, n in earlier["exit_codes"].items() for _ in range(n)]
        seconds, report = earlier["seconds"], earlier
    for i in range(len(codes), args.runs):
        started = time.time()
        proc = subprocess.run([sys.executable, "jobs/label.py", "conf=local", f"model.source={args.model}",
                               "generation.constrained=false", "generation.max_tokens=16", f"output.path={out}",
                               "resume=overwrite", "progress_interval_s=600"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        codes.append(proc.returncode)
        seconds.append(round(time.time() - started, 1))
        finished = "rows/s" in proc.stdout  # the summary table was printed
        print(f"run {i + 1}: exit {proc.returncode}, {seconds[-1]} s, summary printed: {finished}", flush=True)
        if proc.returncode != 0:
            (out.parent / f"run-{i + 1}.log").write_text(proc.stdout)
        # written after every run: an interrupted loop still says what it saw
        report = {"runs": args.runs, "done": i + 1, "model": args.model, "exit_codes": dict(Counter(codes)),
                  "seconds": seconds}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
