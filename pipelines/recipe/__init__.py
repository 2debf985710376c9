"""Hammer's data recipe (jobs/prepare.py, jobs/augment.py, jobs/export.py): shards from datasets, then
masking and irrelevance; at the end, the labels worth keeping as training data."""
