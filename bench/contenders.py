"""This job beside bare vLLM and ray.data.llm's own processor: the same rows, model and engine
settings, each contender in a process of its own, repeated and interleaved; medians with min-max.

    .venv/bin/python bench/contenders.py --rows 500,2000 --repeats 2 [--max-tokens 32] [--contenders job,vllm]
                                         [--conf local|prod] [--model PATH] [--job-set KEY=VALUE ...] [--out FILE.json]

Every contender's engine gets the settings the job would give its own (pipelines.engines.vllm.stage.engine_settings
of the profile, --model and --job-set): on a GPU node, `bench/gpu.py` runs this with conf=prod and a
real Hammer checkpoint.

Contenders:
  job       jobs/label.py's pipeline (pipelines.cli.main), conf=local;
  job_constrained  the same with generation.constrained=true (each row's calls schema as a grammar);
  job_dry_run      the same with dry_run=true: prompts built and written, no engine (memory against rows);
  vllm      one process: our prompt stage builds the token ids, then vLLM's LLM.generate over them;
  ray_llm   ray.data.llm's processor with its own chat-template, tokenize and detokenize stages,
            the Hammer message built in `preprocess`.
Measured per run: wall time from process start to exit (Ray and engine start-up included), GPU
utilization and memory sampled through NVML every 0.2 s (null without an NVIDIA GPU), and the peak RSS of the driver process and of every other process started during the run together (Ray's
processes and workers, the engine's processes), sampled every 0.2 s; for the job contenders, what each engine did
step by step (KV-cache use, preemptions, batch fill, idle time: pipelines/engines/vllm/stats.py). Throughput without start-up: each contender runs at two sizes,
and its marginal rate is (rows B - rows A) / (wall B - wall A): start-up costs the same at both
sizes and cancels. (Timestamps per row would not do: both Ray contenders hand rows on block by
block, so on a few thousand rows every row of a block appears at once.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.engines.vllm.keys import RECORD_DIR_ENV  # noqa: E402
from pipelines.engines.vllm.stats import STATS_FILE_PREFIX  # noqa: E402

TINY_MODEL = "built:tiny-qwen2"
CONTENDERS = ("job", "job_constrained", "job_dry_run", "vllm", "ray_llm")


# ------------------------------------------------------------------------------- contenders (child)


def job_args(conf: str, model: str, max_tokens: int, job_set: list[str]) -> list[str]:
    """The job's command line for a contender run (input and output paths aside)."""
    # unconstrained unless a contender or --job-set says otherwise (conf=local's own model is constrained)
    return [f"conf={conf}", f"model.source={model}", "generation.constrained=false", f"generation.max_tokens={max_tokens}",
            "output.rows_per_file=100", "progress_interval_s=3600", *job_set]


def job_config(args: list[str]):
    """The job's config for these arguments, for the contenders that build their own engine."""
    from pipelines.label.config import load_config

    return load_config([*args, "input.path=unused", "output.path=unused"])


JOB_OVERRIDES = {"job": [], "job_constrained": ["generation.constrained=true"], "job_dry_run": ["dry_run=true"]}


def job_command(repo: Path, data: str, out: str, args: list[str], *overrides: str) -> list[str]:
    """The job as a user runs it, from `repo` (this checkout, or another commit's worktree)."""
    return [sys.executable, str(repo / "jobs" / "label.py"), *args, f"input.path={data}", f"output.path={out}", *overrides]


def job_result(out: str) -> dict:
    summary = json.loads(Path(out, "_summary.json").read_text())
    return {"rows": summary["rows"], "prompt_tokens": summary["prompt_tokens"], "output_tokens": summary["output_tokens"]}


def run_vllm(data: str, args: list[str]) -> dict:
    import pyarrow.dataset as pads
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from bench.data import prompted
    from pipelines.engines.vllm.stage import engine_settings
    from pipelines.engines.columns import PROMPT_TOKENS_COL

    config = job_config(args)
    settings = engine_settings(config)
    max_tokens = config.generation.max_tokens
    table = pads.dataset(data, format="parquet").to_table()
    token_ids = prompted(table, config.model.source, config.generation.max_model_len - max_tokens
                         ).column(PROMPT_TOKENS_COL).to_pylist()
    llm = LLM(config.model.source, **settings.engine_kwargs)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in token_ids],
                           SamplingParams(**settings.sampling_params), use_tqdm=False)
    return {"rows": len(outputs), "prompt_tokens": sum(map(len, token_ids)),
            "output_tokens": sum(len(o.outputs[0].token_ids) for o in outputs)}


def run_ray_llm(data: str, args: list[str]) -> dict:
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from pipelines.engines.vllm.stage import engine_settings
    from pipelines.core.prompts import build_prompt
    from pipelines.core.tools import load_tools

    job = job_config(args)
    settings = engine_settings(job)
    ray.init(num_cpus=6 if job.engine.device == "cpu" else None)  # on a CPU: its four actor stages and the map tasks
    config = vLLMEngineProcessorConfig(
        model_source=job.model.source, engine_kwargs=settings.engine_kwargs, batch_size=job.engine.batch_size,
        concurrency=job.engine.replicas, max_concurrent_batches=job.engine.max_concurrent_batches,
        placement_group_config=settings.placement_group_config,
        chat_template_stage=True, tokenize_stage=True, detokenize_stage=True)
    processor = build_processor(
        config,
        preprocess=lambda row: {"messages": build_prompt(job.prompt.format, row["query"],
                                                         load_tools(row["tools"])).messages,
                                "sampling_params": settings.sampling_params},
        postprocess=lambda row: {"prompt_tokens": row["num_input_tokens"], "output_tokens": row["num_generated_tokens"]})
    rows = processor(ray.data.read_parquet(data)).take_all()
    return {"rows": len(rows), "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows)}


# ---------------------------------------------------------------------------------- harness (parent)


class GpuSampler:
    """GPU utilization (%) and memory in use, every GPU of this node, through NVML; absent without one."""

    def __init__(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001 - no driver, no library, no device: no GPU figures
            self.handles = []
        self.utilization: list[float] = []
        self.peak_memory = 0

    def sample(self) -> None:
        if self.handles:
            self.utilization.append(statistics.mean(self.nvml.nvmlDeviceGetUtilizationRates(h).gpu
                                                    for h in self.handles))
            self.peak_memory = max(self.peak_memory, sum(self.nvml.nvmlDeviceGetMemoryInfo(h).used
                                                         for h in self.handles))

    def result(self) -> dict:
        if not self.handles:
            return {"gpus": 0, "gpu_util_mean_pct": None, "gpu_memory_peak_mib": None}
        return {"gpus": len(self.handles), "gpu_util_mean_pct": statistics.mean(self.utilization or [0.0]),
                "gpu_memory_peak_mib": self.peak_memory / 2**20}


def process_kind(title: str, name: str) -> str:
    """Where a process's CPU goes in the ledger, from its title (Ray and vLLM set them)."""
    if title.startswith("VLLM::") or "multiprocessing" in title or name in ("cc1plus", "g++", "gcc", "ld", "as"):
        return "vllm"  # vLLM's own processes: the engine core, its workers, their helpers and compilers
    if title.startswith("ray::"):
        task = title[len("ray::"):].strip()
        if "EngineUDF" in task or "vLLMEngineStage" in task:
            return "ray: engine actor (ray.data.llm's client of vLLM)"
        if "PromptStage" in task:
            return "ray: prompt actor"
        if task.startswith("IDLE"):
            return "ray: idle workers"
        return f"ray task: {task[:70]}"
    if name in ("gcs_server", "raylet") or any(k in title for k in ("dashboard", "log_monitor", "monitor.py",
                                                                   "runtime_env", "ray/_private", "ray_client")):
        return "ray: system processes"
    return f"other: {name}"


def measure(name: str, data: str, args: list[str], job_repo: Path = REPO) -> dict:
    """Runs one contender in a process of its own (the job: jobs/label.py of `job_repo`), sampling every
    0.2 s the memory and the CPU time of every process started during the run, and the GPUs.
    CPU: each process's user + system time since the last sample goes to the kind its title says
    (process_kind); a process that ends loses at most its last 0.2 s."""
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        out = os.path.join(tmp, "out")
        record_dir = Path(tmp) / "engine-record"
        if name in JOB_OVERRIDES:
            command = job_command(job_repo, data, out, args, *JOB_OVERRIDES[name])
            # Ray's workers import the job's modules by name: from that checkout, not the installed one.
            # Each engine records what it did step by step (pipelines/engines/vllm/stats.py).
            env = {**os.environ, "PYTHONPATH": str(job_repo), RECORD_DIR_ENV: str(record_dir)}
        else:
            command = [sys.executable, __file__, "--child", name, "--data", data, "--result", str(result_file), "--", *args]
            env = None
        # Every process started during the run: Ray reparents its workers, and vLLM's engine processes
        # with them, to init, so the driver's process tree would miss most of it.
        before = {p.pid for p in psutil.process_iter()}
        started = time.time()
        proc = subprocess.Popen(command, cwd=job_repo if env else REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        peak_driver = peak_workers = 0
        gpus = GpuSampler()
        seen: dict[int, float] = {}  # pid -> CPU seconds counted so far
        cpu: dict[str, float] = {}
        while proc.poll() is None:
            gpus.sample()
            driver = workers = 0
            for process in psutil.process_iter():
                if process.pid in before:
                    continue
                try:
                    with process.oneshot():
                        rss = process.memory_info().rss
                        times = process.cpu_times()
                        title = " ".join(process.cmdline()) or process.name()
                        kind = "driver" if process.pid == proc.pid else process_kind(title, process.name())
                except psutil.Error:
                    continue
                total = times.user + times.system
                cpu[kind] = cpu.get(kind, 0.0) + total - seen.get(process.pid, 0.0)
                seen[process.pid] = total
                if process.pid == proc.pid:
                    driver = rss
                else:
                    workers += rss
            peak_driver, peak_workers = max(peak_driver, driver), max(peak_workers, workers)
            time.sleep(0.2)
        wall = time.time() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{name} exited with {proc.returncode}; run it alone to see why: {' '.join(command)}")
        result = job_result(out) if name in JOB_OVERRIDES else json.loads(result_file.read_text())
        engines = [json.loads(p.read_text()) for p in sorted(record_dir.glob(f"{STATS_FILE_PREFIX}*.json"))]
    outside = sum(v for k, v in cpu.items() if k != "vllm")
    return {"wall_s": wall, **result, "driver_peak_mib": peak_driver / 2**20, "workers_peak_mib": peak_workers / 2**20,
            "cpu_s": {k: round(v, 2) for k, v in sorted(cpu.items())}, "cpu_outside_vllm_s": outside, **gpus.result(),
            **({"engines": engines} if engines else {})}


def summarize(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000,2000", help="two sizes, A,B")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--conf", default="local", help="the job's profile; its engine settings go to every contender")
    parser.add_argument("--model", default=TINY_MODEL, help="a checkpoint folder or built:NAME; default: the tiny random model")
    parser.add_argument("--job-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override (repeatable), to compare settings; engine settings reach every contender")
    parser.add_argument("--job-repo", type=Path, default=REPO,
                        help="the checkout whose jobs/label.py the job contenders run (e.g. a worktree of an older commit)")
    parser.add_argument("--child", choices=[c for c in CONTENDERS if c not in JOB_OVERRIDES])
    parser.add_argument("--data")
    parser.add_argument("--result")
    parser.add_argument("job_args", nargs="*", help=argparse.SUPPRESS)  # the child's job arguments
    args = parser.parse_args(argv)

    if args.child:
        runs = {"vllm": lambda: run_vllm(args.data, args.job_args), "ray_llm": lambda: run_ray_llm(args.data, args.job_args)}
        Path(args.result).write_text(json.dumps(runs[args.child]()))
        return {}

    from bench.data import make_rows, write_shards
    from pipelines.engines.vllm.stage import engine_settings
    from pipelines.run.config import ModelConfig
    from pipelines.models import resolve_model

    args.model = resolve_model(ModelConfig(source=args.model), key="--model")
    child_args = job_args(args.conf, args.model, args.max_tokens, args.job_set)
    sizes = sorted(int(n) for n in args.rows.split(","))
    rows = make_rows(sizes[-1], seed=0)
    data = {size: REPO / ".cache" / "bench" / f"rows-{size}" for size in sizes}
    for size, path in data.items():  # the smaller set is a prefix of the larger: same rows, more of them
        if not path.exists():
            write_shards(rows[:size], path)
    contenders = args.contenders.split(",")
    small, large = sizes
    runs: dict[tuple[str, int], list[dict]] = {(n, size): [] for n in contenders for size in sizes}
    for _ in range(args.repeats):  # interleaved, so that drift on a shared machine hits every contender
        for name in contenders:
            for size in sizes:
                runs[name, size].append(measure(name, str(data[size]), child_args, args.job_repo))
                last = runs[name, size][-1]
                print(name, size, json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in last.items()}),
                      flush=True)
    results = {}
    for name in contenders:
        pairs = list(zip(runs[name, small], runs[name, large]))
        marginal = [(b["rows"] - a["rows"]) / (b["wall_s"] - a["wall_s"]) for a, b in pairs]
        results[name] = {
            f"wall_s_{small}": summarize([r["wall_s"] for r in runs[name, small]]),
            f"wall_s_{large}": summarize([r["wall_s"] for r in runs[name, large]]),
            "rows_per_s": summarize(marginal),
            # CPU seconds per 1,000 rows outside vLLM's own processes, at the margin: fixed costs cancel
            "cpu_outside_vllm_s_per_1000_rows": summarize(
                [1000 * (b["cpu_outside_vllm_s"] - a["cpu_outside_vllm_s"]) / (b["rows"] - a["rows"]) for a, b in pairs]),
            "cpu_s_per_1000_rows_by_process": {
                kind: round(statistics.median(1000 * (b["cpu_s"].get(kind, 0) - a["cpu_s"].get(kind, 0)) / (b["rows"] - a["rows"])
                                              for a, b in pairs), 3)
                for kind in sorted({k for r in [*runs[name, small], *runs[name, large]] for k in r["cpu_s"]})},
            **{f"cpu_s_{size}": {k: round(statistics.median(r["cpu_s"].get(k, 0) for r in runs[name, size]), 2)
                                 for k in sorted({k for r in runs[name, size] for k in r["cpu_s"]})} for size in sizes},
            "prompt_tokens_per_s": summarize([(b["prompt_tokens"] - a["prompt_tokens"]) / (b["wall_s"] - a["wall_s"])
                                              for a, b in pairs]),
            "output_tokens_per_s": summarize([(b["output_tokens"] - a["output_tokens"]) / (b["wall_s"] - a["wall_s"])
                                              for a, b in pairs]),
            **{f"{who}_peak_mib_{size}": summarize([r[f"{who}_peak_mib"] for r in runs[name, size]])
               for who in ("driver", "workers") for size in sizes},
            **gpu_figures([*runs[name, small], *runs[name, large]]),
        }
        if "engines" in runs[name, large][0]:  # what each engine did, on every run of the larger size
            results[name][f"engines_{large}"] = [r["engines"] for r in runs[name, large]]
    report = {"rows": sizes, "max_tokens": args.max_tokens, "repeats": args.repeats, "conf": args.conf,
              "job_repo": str(args.job_repo),
              "model": args.model, "engine_kwargs": engine_settings(job_config(child_args)).engine_kwargs,
              "job_set": args.job_set, "results": results}
    if "vllm" in results:
        bare = results["vllm"]["rows_per_s"]["median"]
        report["ratio_to_bare_vllm"] = {n: round(r["rows_per_s"]["median"] / bare, 3) for n, r in results.items()}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def gpu_figures(runs: list[dict]) -> dict:
    if not runs[0]["gpus"]:
        return {"gpus": 0}
    return {"gpus": runs[0]["gpus"], "gpu_util_mean_pct": summarize([r["gpu_util_mean_pct"] for r in runs]),
            "gpu_memory_peak_mib": summarize([r["gpu_memory_peak_mib"] for r in runs])}


if __name__ == "__main__":
    main()
