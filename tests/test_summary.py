from pipelines.label.summary import SummaryCounter, format_table


def test_summary_counts_accuracy_and_table():
    counter = SummaryCounter()
    counter.add({"status": ["ok", "bad_input"], "call_type": ["single", "none"], "num_prompt_tokens": [10, None],
                 "num_output_tokens": [5, None], "correct": [True, None], "gold_call_type": ["single", "single"],
                 "gold_errors": [[], []], "agreement": [None, None], "mean_logprob": [None, None],
                 "finish_reason": ["stop", None], "sample_finish_reasons": [None, None]})
    counter.add({"status": ["ok", "no_call"], "call_type": ["parallel", "none"], "num_prompt_tokens": [20, 5],
                 "num_output_tokens": [7, 1], "correct": [False, True], "gold_call_type": ["parallel", "irrelevance"],
                 "gold_errors": [[], None], "agreement": [None, None], "mean_logprob": [None, None],
                 "finish_reason": ["stop", "stop"], "sample_finish_reasons": [None, None]})
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
    assert summary["gold_with_errors"] == 0 and summary["calibration"] == {"agreement": {}, "mean_logprob": {}}
    assert summary["truncated"] == {"rows": 0, "samples": 0, "of_samples": 0} and "truncated" not in table


def test_outputs_cut_at_max_tokens_are_counted_and_the_key_to_raise_is_named():
    counter = SummaryCounter()
    counter.add({"status": ["parse_error", "ok", "bad_input"], "call_type": ["none", "single", "none"],
                 "num_prompt_tokens": [9, 9, None], "num_output_tokens": [32, 12, None], "correct": [False, True, None],
                 "gold_call_type": ["single"] * 3, "gold_errors": [[], [], []], "agreement": [0.0, 0.5, None],
                 "mean_logprob": [None] * 3, "finish_reason": ["length", "stop", None],
                 "sample_finish_reasons": [["length", "length"], ["stop", "length"], None]})
    summary = counter.to_dict(1.0)
    assert summary["truncated"] == {"rows": 1, "samples": 3, "of_samples": 4}
    assert ("truncated 1 rows and 3 of 4 samples stopped at generation.max_tokens before their end of turn: raise "
            "generation.max_tokens") in format_table(summary)


def test_the_calibration_table_says_whether_confidence_predicts_correctness():
    # Constructed rows with known verdicts: confident rows right, doubtful rows wrong.
    counter = SummaryCounter()
    counter.add({"status": ["ok"] * 6 + ["parse_error"], "call_type": ["single"] * 6 + ["none"],
                 "num_prompt_tokens": [1] * 7, "num_output_tokens": [1] * 7,
                 "correct": [True, True, True, False, False, None, False],
                 "gold_call_type": ["single"] * 5 + [None, "single"],
                 "gold_errors": [[], [], [], [], [], None, ["missing_required: f.a"]],
                 "agreement": [1.0, 1.0, 0.9, 0.25, 0.0, 1.0, None],
                 "mean_logprob": [-0.01, -0.05, -0.3, -1.0, -3.0, -0.02, None],
                 "finish_reason": ["stop"] * 7, "sample_finish_reasons": [None] * 7})
    summary = counter.to_dict(1.0)
    assert summary["gold_with_errors"] == 1
    assert summary["calibration"]["agreement"] == {
        "0": {"rows": 1, "accuracy": 0.0}, "(0, 0.5)": {"rows": 1, "accuracy": 0.0},
        "[0.8, 1)": {"rows": 1, "accuracy": 1.0}, "1": {"rows": 3, "accuracy": 1.0}}
    assert summary["calibration"]["mean_logprob"] == {
        "< -2": {"rows": 1, "accuracy": 0.0}, "[-2, -0.5)": {"rows": 1, "accuracy": 0.0},
        "[-0.5, -0.1)": {"rows": 1, "accuracy": 1.0}, ">= -0.1": {"rows": 3, "accuracy": 1.0}}
    table = format_table(summary)
    assert "agreement     1                     3  accuracy 100.0%" in table
    assert "gold      breaks its tools          1  (gold_errors: fix these references)" in table
