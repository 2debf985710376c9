"""Batch labeling of function-calling data with Hammer models (docs/design.md, "Layout").

    core/      pure: statuses and reasons, the untrusted JSON reader, tools and their schemas, prompts,
               parsing, validation, scoring, masking, confidence, judging, sizing
    engines/   the engine stage, one kind per folder (vllm/, endpoint/)
    models/    where a model comes from, its prompt tokenizer, the models the job builds
    run/       what every job over shards shares: reader, writer, output protocol, lease, guard, preflight
    label/     the labeling job; judge/ the judge job; recipe/ the data jobs without a model
    conf/      the profiles (conf=NAME)
    api.py     the jobs and the row-level pieces from Python; cli.py the commands
"""
