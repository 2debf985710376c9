from pipelines.summary import SummaryCounter, format_table


def test_summary_counts_and_table():
    counter = SummaryCounter()
    counter.add(["ok", "bad_input"], ["single", "none"], [10, None], [5, None])
    counter.add(["ok"], ["parallel"], [20], [7])
    summary = counter.to_dict(2.0, run_id="r")
    assert summary["rows"] == 3 and summary["status"]["ok"] == 2 and summary["status"]["bad_input"] == 1
    assert summary["status"]["engine_error"] == 0 and summary["call_type"]["parallel"] == 1
    assert (summary["prompt_tokens"], summary["output_tokens"], summary["rows_per_second"]) == (30, 12, 1.5)
    table = format_table(summary)
    assert "status    ok                        2   66.7%" in table and "engine_error" not in table
