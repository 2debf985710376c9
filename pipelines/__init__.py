"""Batch labeling of function-calling data with Hammer models.

    core/      pure: statuses and reasons, tools and their JSON schemas, prompts, parsing, validation, scoring, masking, sizing
    label/     the labeling job: config, stages, engine, plan, preflight, lease, output protocol, summary
    recipe/    Hammer's data recipe: prepare and augment
    storage.py files, not runs: filesystems, shard listing, id checks
    cli.py     the command line the jobs share
"""
