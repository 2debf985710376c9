"""`execution.*`: where the tools' implementations are, and the limits a row's execution runs under."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.config import ConfigError, redact, to_plain

# execution.implementations=[bfcl]: the leaderboard's executable environments (bfcl-eval's multi-turn
# classes), each built from the row's initial_config as BFCL builds them.
BFCL = "bfcl"
BFCL_CLASSES = {
    "GorillaFileSystem": "gorilla_file_system", "MathAPI": "math_api", "MessageAPI": "message_api",
    "TwitterAPI": "posting_api", "TicketAPI": "ticket_api", "TradingBot": "trading_bot",
    "TravelAPI": "travel_booking", "VehicleControlAPI": "vehicle_control",
}
BFCL_MODULE = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"


@dataclass
class ExecutionConfig:
    # Where each tool's implementation is found, by the tool's name: "pkg.module" (its public
    # functions), "pkg.module:Class" (the public methods of one fresh instance per row), or "bfcl"
    # (the leaderboard's environments). Empty: no execution.
    implementations: list[str] = field(default_factory=list)
    # Per row, the classes it uses (a list; absent or null: every class named above is built)
    environments_column: str = "involved_classes"
    # Per row, each class's configuration as JSON {"Class": {...}}: a class is built without arguments, then
    # given its configuration through its _load_scenario (BFCL's convention; a class without one takes none)
    config_column: str = "initial_config"
    call_timeout_s: float = 5.0  # per call (and per environment's construction); past it the row's worker is killed
    memory_mb: int = 1024  # address space a row's worker may add to what it starts with; past it: out_of_memory
    max_result_chars: int = 1000  # per call result written to exec_results
    concurrency: int = 1  # executor actors (each runs one row's worker at a time)

    @property
    def enabled(self) -> bool:
        return bool(self.implementations)


def bfcl_parameters(classes: list[str]):
    """name -> the parameter names, in order, of a method of one of BFCL's environment classes (None
    for another name): how a gold call's positional arguments are named."""
    import importlib
    import inspect

    found: dict[str, list[str]] = {}
    for name in reversed(classes):  # the first class with the method wins, as in the environments' own lookup
        cls = getattr(importlib.import_module(f"{BFCL_MODULE}.{BFCL_CLASSES[name]}"), name)
        for method, function in inspect.getmembers(cls, inspect.isfunction):
            if not method.startswith("_"):
                found[method] = [p for p in inspect.signature(function).parameters if p != "self"]
    return found.get


def implementation_specs(config: ExecutionConfig) -> list[str]:
    """execution.implementations with `bfcl` expanded to its classes."""
    specs = []
    for spec in config.implementations:
        if spec == BFCL:
            specs += [f"{BFCL_MODULE}.{module}:{name}" for name, module in BFCL_CLASSES.items()]
        else:
            specs.append(spec)
    return specs


def check_execution(config: ExecutionConfig) -> None:
    """Before any work: every implementation imports and names what it says (exit 2 otherwise)."""
    import importlib

    if not config.enabled:
        return
    if config.call_timeout_s <= 0 or config.memory_mb < 64 or config.max_result_chars < 1 or config.concurrency < 1:
        raise ConfigError("execution.call_timeout_s must be > 0, execution.memory_mb >= 64, "
                          "execution.max_result_chars and execution.concurrency >= 1")
    for spec in implementation_specs(config):
        module_name, _, class_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # noqa: BLE001 - the user's module: any import error is the finding
            raise ConfigError(f"execution.implementations names {spec!r}, whose module does not import "
                              f"({type(e).__name__}: {e}); install it or fix the name") from None
        if class_name and not isinstance(getattr(module, class_name, None), type):
            raise ConfigError(f"execution.implementations names {spec!r}: {module_name} has no class {class_name}")


def execution_settings(execution: ExecutionConfig) -> dict:
    """The settings that change exec_* columns: the implementations, the columns read, the limits.
    Not the executors' count."""
    plain = to_plain(execution)
    plain.pop("concurrency")
    return redact(plain)
