"""Which queries overlap an evaluation set: normalized text, word n-grams, optionally the tools' names."""

from pipelines.core.decontamination import EvalIndex, normalized_words, query_text

QUESTION = "Find the area of a triangle with a base of 10 units and height of 5 units."


def test_normalization_ignores_case_punctuation_and_width():
    assert normalized_words("Ｆｉｎｄ the AREA, of_a  triangle!") == ["find", "the", "area", "of", "a", "triangle"]


def test_a_copy_a_near_copy_and_a_conversation_overlap_an_unrelated_query_does_not():
    index = EvalIndex(ngram=8)
    index.add(QUESTION)
    assert index.overlaps(QUESTION.upper())
    assert index.overlaps("Please find the area of a triangle with a base of 10 units and height of 7 units")
    assert index.overlaps('[{"role": "system", "content": "be brief"}, {"role": "user", "content": "' + QUESTION + '"}]')
    assert not index.overlaps("Find the area of a circle with a radius of 10 units.")
    assert not index.overlaps(None) and not index.overlaps("")


def test_a_short_query_matches_by_its_whole_text_only():
    index = EvalIndex(ngram=8)
    index.add("Weather in Oslo?")
    assert index.overlaps("weather in oslo")
    assert not index.overlaps("Weather in Oslo tomorrow?")


def test_with_tools_an_overlap_needs_the_same_function_names():
    index = EvalIndex(ngram=8, with_tools=True)
    index.add(QUESTION, frozenset({"calculate_triangle_area"}))
    assert index.overlaps(QUESTION, frozenset({"calculate_triangle_area"}))
    assert not index.overlaps(QUESTION, frozenset({"area"}))


def test_query_text_of_a_conversation_is_its_users_messages():
    assert query_text('[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, '
                      '{"role": "user", "content": "c"}]') == "a\nc"
    assert query_text("[not json") == "[not json"


def test_a_hostile_query_is_its_own_text_in_bounded_time():
    """A query that looks like a conversation but nests past the limit or holds a 5,000-digit number is
    read as text (json.loads would recurse out of the stack on the first)."""
    deep = "[" * 100_000 + "]" * 100_000
    assert query_text(deep) == deep
    huge = '[{"role": "user", "content": "x", "n": ' + "9" * 5000 + "}]"
    assert query_text(huge) == huge
    index = EvalIndex(ngram=8)
    index.add("a b c d e f g h i j")
    assert not index.overlaps(deep) and not index.overlaps(huge)
