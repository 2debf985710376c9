"""What samples cost: the job's marginal rows/s at generation.samples 1, 4 and 8, with vLLM's prefix
cache on and off, through bench/contenders.py (contender `job`, two sizes, start-up cancelled).

    .venv/bin/python bench/samples.py [--rows 500,1500] [--repeats 1] [--samples 1,4,8] [--out FILE.json]
                                      [contenders.py options, e.g. --conf prod --model PATH on a GPU node]

With prefix caching a row's label and samples share one prefill (docs/design.md, "Samples and the
engine stage"); without it every output computes the prompt again: vLLM 0.29 fans a request's `n`
out into child requests (`ParentRequest`), which share a prompt only through the prefix cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="500,1500")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--samples", default="1,4,8")
    parser.add_argument("--out", type=Path)
    args, passthrough = parser.parse_known_args()

    results = {}
    for prefix in ("true", "false"):
        for samples in args.samples.split(","):
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                subprocess.run([sys.executable, str(REPO / "bench" / "contenders.py"), "--rows", args.rows,
                                "--repeats", str(args.repeats), "--contenders", "job", "--out", out.name,
                                "--job-set", f"generation.samples={samples}",
                                "--job-set", f"engine.enable_prefix_caching={prefix}", *passthrough], check=True)
                job = json.loads(Path(out.name).read_text())["results"]["job"]
            results[f"samples={samples} prefix_caching={prefix}"] = {
                "rows_per_s": job["rows_per_s"], "output_tokens_per_s": job["output_tokens_per_s"]}
            print(json.dumps({f"samples={samples} prefix_caching={prefix}": job["rows_per_s"]}), flush=True)
    report = {"rows": args.rows, "repeats": args.repeats, "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
