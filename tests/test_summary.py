from pipelines.label.summary import SummaryCounter, format_table


def test_summary_counts_accuracy_and_table():
    counter = SummaryCounter()
    counter.add({"status": ["ok", "bad_input"], "call_type": ["single", "none"], "num_prompt_tokens": [10, None],
                 "num_output_tokens": [5, None], "correct": [True, None], "gold_call_type": ["single", "single"]})
    counter.add({"status": ["ok", "no_call"], "call_type": ["parallel", "none"], "num_prompt_tokens": [20, 5],
                 "num_output_tokens": [7, 1], "correct": [False, True], "gold_call_type": ["parallel", "irrelevance"]})
    summary = counter.to_dict(2.0, run_id="r")
    assert summary["rows"] == 4 and summary["status"]["ok"] == 2 and summary["status"]["bad_input"] == 1
    assert summary["status"]["engine_error"] == 0 and summary["call_type"]["parallel"] == 1
    assert (summary["prompt_tokens"], summary["output_tokens"], summary["rows_per_second"]) == (35, 13, 2.0)
    accuracy = summary["accuracy"]
    assert accuracy["scored_rows"] == 3 and accuracy["overall"] == 0.6667
    assert (accuracy["single"], accuracy["parallel"], accuracy["irrelevance"], accuracy["multiple"]) == (1.0, 0.0, 1.0, None)
    assert summary["confusion"] == {"single": {"ok": 1, "bad_input": 1}, "parallel": {"ok": 1},
                                    "irrelevance": {"no_call": 1}}
    table = format_table(summary)
    assert "status    ok                        2   50.0%" in table and "engine_error" not in table
    assert "accuracy  overall               66.7%  of 3 rows with answers" in table
