"""The labeling job's preflight: what a run needs, checked in seconds before any model loads.

Runs at the start of every labeling run, and alone with `preflight=true` (a checklist, exit 0 or 2).
The checks any job's pool needs are pipelines/run/preflight.py's; these are the labeling job's:
- the input lists and its footers read, its ids are unique;
- the KV-cache budget for this model and GPU, and how many of this input's rows fit at once.
"""

from __future__ import annotations

import statistics

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import engines, storage
from pipelines.engines import TemplateNotChecked
from pipelines.core import sizing
from pipelines.core.prompts import CHAT_TEMPLATE
from pipelines.label import config as cfg
from pipelines.run.lease import Lease
from pipelines.engines.config import scheduler
from pipelines.checklist import Checklist
from pipelines.run.preflight import check_batching, check_output, check_pool

PROMPT_SAMPLE_ROWS = 256


def preflight(config: cfg.LabelConfig, model: str | None, mode: cfg.Mode, lease: Lease | None = None) -> Checklist:
    """Runs every check that applies to the mode (generating loads a model on engine actors); prints the
    checklist as it goes; raises PreflightFailed naming every failure. With a lease (a run, not
    `preflight=true` alone), takes it: the run holds the output from here on."""
    print("preflight:", flush=True)
    checks = Checklist()
    engine = mode == cfg.Mode.GENERATE
    if engine and config.generation.constrained and config.validation.parser != "json":
        checks.fail("generation", "generation.constrained=true makes every output a JSON list of calls (Hammer's "
                                  f"format), which validation.parser={config.validation.parser} does not read: set "
                                  "generation.constrained=false to let the model answer in its own format, or "
                                  "validation.parser=json")
    shards = checks.shards = _check_input(config, checks, mode)
    check_output(config, checks, lease)
    if engine:
        model_config, probe = check_pool(config, config.ray, model, checks,
                                         sends_tools=config.prompt.format == CHAT_TEMPLATE)
        if probe is not None:
            _report_kv_budget(config, model_config, probe, shards, model, checks)
    elif model:
        engines.kind_of(config.engine).check_model(config, model, checks)
    if config.prompt.format == CHAT_TEMPLATE and mode != cfg.Mode.REVALIDATE and not checks.failed:
        _check_tools_template(config, model, checks)
    check_batching(config, checks, engine)
    checks.raise_if_failed()
    return checks


def _check_tools_template(config: cfg.LabelConfig, model: str, checks: Checklist) -> None:
    """prompt.format=chat_template hands each row's tools to the model's own chat template: one that
    ignores them would label every row without its tools. An endpoint's server applies its own."""
    try:
        where, problem = engines.kind_of(config.engine).tools_template_problem(config, model)
    except TemplateNotChecked as e:
        checks.info("prompt", f"prompt.format=chat_template: not checked: {e}")
        return
    if problem is None:
        checks.ok("prompt", f"prompt.format=chat_template: {where} shows the row's tools in its prompt")
    else:
        checks.fail("prompt", f"prompt.format=chat_template: {where}: {problem}; use a model whose chat template "
                              "takes tools (Qwen2.5/3, Llama 3.1+, Mistral, xLAM-2, Hammer 2.x), or a Hammer "
                              "prompt.format (hammer1, hammer2.0, hammer2.1)")


def _check_input(config: cfg.LabelConfig, checks: Checklist, mode: cfg.Mode) -> storage.Shards | None:
    try:
        fs, root = storage.filesystem(config.input.path, config.s3)
        out_fs, out_root = storage.filesystem(config.output.path, config.s3)
        inside = out_fs.protocol == fs.protocol and out_root.startswith(root.rstrip("/") + "/")
        if inside:
            checks.info("input", f"output.path is inside input.path: its files ({config.output.path}) are left "
                                 "out of the input")
        shards = storage.list_shards(fs, root, storage.REQUIRED_COLUMNS + (("raw_output",) if mode == cfg.Mode.REVALIDATE else ()),
                                     exclude=out_root if inside else None)
        bad_ids = storage.find_bad_ids(fs, shards) if "id" in shards.schema.names else []
        if bad_ids:
            raise storage.InputError(f"input ids must be unique and not null; found: {'; '.join(bad_ids)}")
    except (storage.InputError, OSError) as e:
        checks.fail("input", str(e))
        return None
    ids = "ids unique" if "id" in shards.schema.names else "ids from shard and row"
    checks.ok("input", f"{len(shards.paths)} shard(s), {shards.num_rows} rows, footers read, {ids} "
                       f"({config.input.path})")
    return shards


def _report_kv_budget(config: cfg.LabelConfig, model_config: dict, probe: dict, shards: storage.Shards | None,
                      model: str, checks: Checklist) -> None:
    if config.engine.device == "cpu":
        checks.info("KV cache", "engine.device=cpu: vLLM takes engine.gpu_memory_utilization of RAM; not sized here")
        return
    engine = config.engine
    shape = sizing.ModelShape.from_hf_config(model_config)
    seqs, tokens = scheduler(config.engine)
    budget = sizing.kv_budget(shape, probe["gpu_memory"], engine.gpu_memory_utilization,
                              tensor_parallel_size=engine.tensor_parallel_size, max_num_batched_tokens=tokens,
                              max_num_seqs=seqs)
    lengths = sample_prompt_lengths(config, model, shards) if shards else []
    prompt = int(statistics.median(lengths)) if lengths else None
    detail = (f"{budget.kv_tokens:,} tokens per replica (computed: {probe['gpu_memory'] / sizing.GiB:.1f} GiB x "
              f"{engine.gpu_memory_utilization} - weights {budget.weights / sizing.GiB:.1f} GiB - activations "
              f"{budget.activations / sizing.GiB:.1f} GiB)")
    if prompt:
        rows = budget.rows_at_once(prompt, config.generation.max_tokens)
        detail += (f"; median prompt of {len(lengths)} sampled rows {prompt} tokens + {config.generation.max_tokens} "
                   f"output: {rows:,} rows at once, engine.max_num_seqs {seqs}")
    checks.info("KV cache", detail)


def sample_prompt_lengths(config: cfg.LabelConfig, model: str, shards: storage.Shards) -> list[int]:
    """Prompt tokens of the first rows of the first shard, built as the prompt stage builds them."""
    from pipelines.label.stages import PROMPT_TOKEN_COUNT_COL, PromptStage

    fs, _ = storage.filesystem(config.input.path, config.s3)
    with fs.open(shards.paths[0], "rb") as f:
        table = first_rows(pq.ParquetFile(f), PROMPT_SAMPLE_ROWS, [*PromptStage.CONTRACT.reads, "id"])
    if "id" not in table.column_names:
        table = table.append_column("id", pa.array([str(i) for i in range(table.num_rows)]))
    stage = PromptStage(model, config.prompt.format, config.generation.max_model_len, config.model.trust_remote_code,
                        mask_names=config.mask.names, seed=config.seed)
    return [n for n in stage(table).column(PROMPT_TOKEN_COUNT_COL).to_pylist() if n]


def first_rows(parquet: pq.ParquetFile, rows: int, columns: list[str]) -> pa.Table:
    """The first `rows` rows of the `columns` the file has: only the row groups (and, within them,
    the column chunks) that hold them are read, not the whole shard."""
    names = [c for c in columns if c in parquet.schema_arrow.names]
    batches = parquet.iter_batches(batch_size=rows, columns=names, use_threads=False)  # no reads left in flight
    batch = next(batches, None)
    batches.close()
    return pa.Table.from_batches([batch]) if batch is not None else parquet.schema_arrow.empty_table().select(names)
