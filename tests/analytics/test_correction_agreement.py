"""The correction pass's agreement rule, on hand-made answer sets (no database)."""

from labelqa.analytics.correction_agreement import agreed_label, tidy_label


def test_the_most_common_answer_wins():
    assert agreed_label(["Cat", "Fox", "Cat"]) == "Cat"
    assert agreed_label({"Cat": 1, "Fox": 3, "Wolf": 2}) == "Fox"
    assert agreed_label(["Wolf"]) == "Wolf"


def test_a_tie_at_the_top_is_unresolved_but_a_tie_below_it_is_not():
    assert agreed_label(["Cat", "Fox"]) == ""
    assert agreed_label({"Cat": 2, "Fox": 2, "Wolf": 1}) == ""
    assert agreed_label({"Cat": 3, "Fox": 1, "Wolf": 1}) == "Cat"


def test_skips_and_zero_counts_are_not_answers():
    assert agreed_label([]) == ""
    assert agreed_label(["", ""]) == ""
    assert agreed_label(["", "", "Cat"]) == "Cat"
    assert agreed_label({"Cat": 0, "Fox": 1}) == "Fox"
    assert agreed_label({"Cat": 0}) == ""


def test_labels_are_tidied_but_keep_their_case():
    assert tidy_label("  golden \t retriever\n") == "golden retriever"
    assert tidy_label("Red Panda") == "Red Panda"
    assert tidy_label("   ") == ""


def test_one_label_typed_in_invisibly_different_ways_is_one_label():
    """Each pair was tallied as two answers, so two reviewers who agreed had no agreed label."""
    assert tidy_label("Cafe\u0301") == tidy_label("Caf\u00e9") == "Caf\u00e9"  # combining accent, or composed
    for hidden in ("Fo\u200bx", "\ufeffFox", "Fo\u00adx", "Fox\u2060"):
        assert tidy_label(hidden) == "Fox", repr(hidden)
    assert (
        tidy_label("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")
        == "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    )  # ZWNJ: Persian
