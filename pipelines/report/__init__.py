"""One HTML file per finished output (`_report.html` beside `_summary.json`): what ran, statuses and
reasons, quality, confidence, the judge's confusion, execution, and rows to review. Built from the
summary the job wrote and a pass over the output's rows; one file, images inside, no script, no
network. plots.py draws (matplotlib), rows.py picks the rows, page.py writes the HTML (every value
escaped: rows are untrusted), job.py writes it for a run and for `jobs/report.py`.
"""
