"""Hammer's data recipe (jobs/prepare.py, jobs/augment.py): shards from datasets, then masking and irrelevance."""
