"""Execution of labeled calls against real implementations (`execution.*`): each row's calls, and its
gold's, run in a worker process of their own with a time limit per call and a memory limit, on fresh
instances of the row's environments; the results and the environments' states say whether the label
does what the gold does (pipelines/core/execution.py's rules, the leaderboard's).

config.py: the settings; worker.py: what runs in the worker process (never evaluates text: parsed
JSON calls only, by tool name); runner.py: the parent's side (one process per row, limits, verdict);
stage.py: the stage of the labeling job and of the re-execution job (pipelines/execution/job.py).
"""
