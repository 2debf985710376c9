"""The judge job (jobs/judge.py): a second model's verdict on the labels of a labeling output."""
