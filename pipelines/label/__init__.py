"""The labeling job (jobs/label.py, jobs/validate.py): read -> prompt -> generate -> validate -> write."""
