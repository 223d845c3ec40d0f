import pytest

from labelqa.analytics.agreement import fleiss_kappa


def test_perfect_agreement_on_both_categories_is_one():
    assert fleiss_kappa([(3, 0), (0, 3)]) == pytest.approx(1.0)


def test_a_hand_computed_table():
    # Items (2,1), (3,0), (1,2), (0,3): P_i = 1/3, 1, 1/3, 1 -> P = 2/3; p = 6/12 -> Pe = 1/2; kappa = 1/3.
    assert fleiss_kappa([(2, 1), (3, 0), (1, 2), (0, 3)]) == pytest.approx(1 / 3)


def test_systematic_disagreement_is_negative():
    # Every item split 1-1: P = 0, Pe = 1/2 -> kappa = -1.
    assert fleiss_kappa([(1, 1), (1, 1)]) == pytest.approx(-1.0)


def test_items_with_fewer_than_two_votes_are_left_out():
    assert fleiss_kappa([(2, 1), (3, 0), (1, 2), (0, 3), (1, 0), (0, 1), (0, 0)]) == pytest.approx(1 / 3)


def test_items_of_different_sizes():
    # (2,0): P=1; (1,2): P=1/3 -> P = 2/3; p = 3/5 -> Pe = 9/25 + 4/25 = 13/25; kappa = (2/3 - 13/25) / (12/25) = 11/36.
    assert fleiss_kappa([(2, 0), (1, 2)]) == pytest.approx(11 / 36)


@pytest.mark.parametrize("counts", [[], [(1, 0), (0, 1)], [(2, 0), (3, 0)]])
def test_undefined_without_pairs_or_with_one_category_only(counts):
    assert fleiss_kappa(counts) is None


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        fleiss_kappa([(-1, 2)])


def test_grouped_counts_with_weights_give_the_kappa_of_the_items_spelled_out():
    items = [(2, 1)] * 3 + [(3, 0)] * 5 + [(1, 2)] + [(0, 3)] * 2 + [(1, 0)] * 4
    grouped = [(2, 1), (3, 0), (1, 2), (0, 3), (1, 0)]
    assert fleiss_kappa(grouped, weights=[3, 5, 1, 2, 4]) == pytest.approx(fleiss_kappa(items))
    assert fleiss_kappa(grouped, weights=[3, 5, 1, 2, 4]) != pytest.approx(fleiss_kappa(grouped))
