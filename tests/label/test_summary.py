from pipelines.label.summary import SummaryCounter, format_table


def test_summary_counts_accuracy_and_table():
    counter = SummaryCounter()
    counter.add({"status": ["ok", "bad_input"], "call_type": ["single", "none"], "num_prompt_tokens": [10, None],
                 "num_output_tokens": [5, None], "correct": [True, None], "gold_call_type": ["single", "single"],
                 "gold_errors": [[], []], "agreement": [None, None], "mean_logprob": [None, None],
                 "finish_reason": ["stop", None], "sample_finish_reasons": [None, None], "scoring_rules": ["schema", None]})
    counter.add({"status": ["ok", "no_call"], "call_type": ["parallel", "none"], "num_prompt_tokens": [20, 5],
                 "num_output_tokens": [7, 1], "correct": [False, True], "gold_call_type": ["parallel", "irrelevance"],
                 "gold_errors": [[], None], "agreement": [None, None], "mean_logprob": [None, None],
                 "finish_reason": ["stop", "stop"], "sample_finish_reasons": [None, None], "scoring_rules": ["schema"] * 2})
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
    assert summary["bfcl"] is None and "bfcl" not in table  # no row carries a BFCL category


def test_outputs_cut_at_max_tokens_are_counted_and_the_key_to_raise_is_named():
    counter = SummaryCounter()
    counter.add({"status": ["parse_error", "ok", "bad_input"], "call_type": ["none", "single", "none"],
                 "num_prompt_tokens": [9, 9, None], "num_output_tokens": [32, 12, None], "correct": [False, True, None],
                 "gold_call_type": ["single"] * 3, "gold_errors": [[], [], []], "agreement": [0.0, 0.5, None],
                 "mean_logprob": [None] * 3, "finish_reason": ["length", "stop", None],
                 "sample_finish_reasons": [["length", "length"], ["stop", "length"], None],
                 "scoring_rules": ["schema", "schema", None]})
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
                 "finish_reason": ["stop"] * 7, "sample_finish_reasons": [None] * 7, "scoring_rules": ["schema"] * 7})
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


def _bfcl_rows(verdicts: dict[str, list]) -> dict[str, list]:
    """Rows of BFCL categories with the given verdicts (None: no verdict)."""
    categories = [c for c, values in verdicts.items() for _ in values]
    correct = [v for values in verdicts.values() for v in values]
    n = len(correct)
    return {"status": ["ok"] * n, "call_type": ["single"] * n, "num_prompt_tokens": [1] * n, "num_output_tokens": [1] * n,
            "correct": correct, "gold_call_type": ["single"] * n, "gold_errors": [[]] * n, "agreement": [None] * n,
            "mean_logprob": [None] * n, "finish_reason": ["stop"] * n, "sample_finish_reasons": [None] * n,
            "scoring_rules": ["bfcl" if v is not None else None for v in correct], "bfcl_category": categories}


def test_the_bfcl_table_aggregates_like_the_leaderboard_and_shows_missing_categories_as_missing():
    counter = SummaryCounter()
    counter.add(_bfcl_rows({"simple_python": [True, True, True, False], "multiple": [True, False],
                            "parallel": [False, False, True, True, True], "parallel_multiple": [True],
                            "irrelevance": [True, False], "live_irrelevance": [True, True, True, True],
                            "live_simple": [True, False, False], "live_multiple": [True],
                            "live_relevance": [True, None], "not_a_category": [True]}))
    result = counter.to_dict(1.0)["bfcl"]
    cells = result["categories"]
    assert (cells["simple_python"]["accuracy"], cells["simple_python"]["total"]) == (0.75, 4)
    assert cells["simple_java"]["missing"] == ["simple_java"] and cells["live_parallel"]["missing"] == ["live_parallel"]
    # non-live simple is the unweighted mean of python, java and javascript: missing here
    assert result["non_live_simple"]["missing"] == ["simple_java", "simple_javascript"]
    assert result["non_live_ast_summary"]["missing"] == ["simple_java", "simple_javascript"]
    # live AST: weighted by rows, (1 + 1) / (3 + 1); missing live_parallel and live_parallel_multiple
    assert result["live_ast_summary"]["accuracy"] == 0.5 and result["live_ast_summary"]["total"] == 4
    # irrelevance: the unweighted mean of non-live (1/2) and live (4/4)
    assert result["irrelevance"]["accuracy"] == 0.75 and result["irrelevance"]["missing"] == []
    assert result["relevance"]["accuracy"] == 1.0 and result["unscored_rows"] == {"live_relevance": 1}
    text = format_table(counter.to_dict(1.0))
    assert "bfcl      Irrelevance               75.00" in text and "bfcl      Non-live AST summary    missing" in text
    assert "bfcl      simple_python             75.00  of 4 rows" in text


def test_the_bfcl_summary_of_complete_non_live_categories_is_the_unweighted_mean():
    from pipelines.core.bfcl import table

    result = table({"simple_python": (1, 2), "simple_java": (1, 1), "simple_javascript": (0, 3), "multiple": (4, 4),
                    "parallel": (0, 1), "parallel_multiple": (1, 4)})
    assert result["non_live_simple"]["accuracy"] == (0.5 + 1.0 + 0.0) / 3
    assert result["non_live_ast_summary"]["accuracy"] == ((0.5 + 1.0 + 0.0) / 3 + 1.0 + 0.0 + 0.25) / 4
    assert result["non_live_ast_summary"]["missing"] == []
    # the Python-only mean beside it, for outputs without Java and JavaScript (not a leaderboard figure)
    assert result["non_live_python_ast"]["accuracy"] == (0.5 + 1.0 + 0.0 + 0.25) / 4


def test_java_and_javascript_rows_are_not_scored_as_the_leaderboard_would():
    counter = SummaryCounter()
    counter.add(_bfcl_rows({"simple_java": [True], "simple_python": [True]}))
    result = counter.to_dict(1.0)["bfcl"]
    assert result["categories"]["simple_java"]["missing"] == ["simple_java"]
    assert result["non_live_python_ast"]["missing"] == ["multiple", "parallel", "parallel_multiple"]
