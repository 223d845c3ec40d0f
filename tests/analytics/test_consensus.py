"""Dawid-Skene consensus on simulated crowds, no database."""

import numpy as np
import pytest

from labelqa.analytics.consensus import MAX_ITERATIONS, DawidSkeneResult, dawid_skene, dawid_skene_status

ACCURACIES = (0.95, 0.9, 0.85, 0.6, 0.55)


def simulate_crowd(n_items=2000, votes_per_item=3, prevalence=0.8, seed=2):
    """Return the true label correctness per item and (item, reviewer, confirm) votes."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n_items) < prevalence
    accuracy = np.asarray(ACCURACIES)
    votes = []
    for item in range(n_items):
        reviewers = rng.choice(len(accuracy), size=votes_per_item, replace=False)
        honest = rng.random(votes_per_item) < accuracy[reviewers]
        votes += [(item, f"reviewer-{r}", bool(truth[item] == ok)) for r, ok in zip(reviewers, honest, strict=True)]
    return truth, votes


def majority(votes, n_items):
    balance = np.zeros(n_items)
    for item, _, confirm in votes:
        balance[item] += 1 if confirm else -1
    return balance > 0


@pytest.fixture(scope="module")
def crowd():
    truth, votes = simulate_crowd()
    return truth, votes, dawid_skene(votes)


def test_dawid_skene_makes_fewer_mistakes_than_majority_vote(crowd):
    truth, votes, result = crowd
    posterior = np.array([result.item_posterior[item] for item in range(truth.size)])
    ds_errors = np.sum((posterior >= 0.5) != truth)
    majority_errors = np.sum(majority(votes, truth.size) != truth)
    assert ds_errors < majority_errors


def test_dawid_skene_recovers_each_reviewers_accuracy(crowd):
    _, _, result = crowd
    for r, accuracy in enumerate(ACCURACIES):
        assert result.reviewer_accuracy[f"reviewer-{r}"] == pytest.approx(accuracy, abs=0.05)


def test_dawid_skene_estimates_the_share_of_correct_labels(crowd):
    truth, _, result = crowd
    assert result.prevalence == pytest.approx(truth.mean(), abs=0.03)
    assert 1 <= result.iterations < MAX_ITERATIONS, "converged before the cap"


def test_dawid_skene_posteriors_are_probabilities(crowd):
    _, _, result = crowd
    posteriors = np.array(list(result.item_posterior.values()))
    assert np.all((posteriors > 0) & (posteriors < 1))


def test_dawid_skene_follows_unanimous_votes():
    votes = [(item, r, item < 6) for item in range(10) for r in ("ann", "bob", "cy")]
    result = dawid_skene(votes)
    assert all(result.item_posterior[item] > 0.9 for item in range(6))
    assert all(result.item_posterior[item] < 0.1 for item in range(6, 10))


@pytest.mark.parametrize("n_items", [100, 10_000])
def test_dawid_skene_with_one_vote_per_item_follows_the_votes(n_items):
    """One reviewer per item cannot show anyone's skill; a disconfirm must still count against the label."""
    votes = [(item, "ann", item % 4 != 0) for item in range(n_items)]
    result = dawid_skene(votes)
    disconfirmed = {
        item for item, posterior in result.item_posterior.items() if dawid_skene_status(posterior) != "confirmed"
    }
    assert disconfirmed == {item for item in range(n_items) if item % 4 == 0}
    assert result.reviewer_accuracy["ann"] > 0.5


def disconfirmed_items(result: DawidSkeneResult) -> set:
    return {item for item, posterior in result.item_posterior.items() if dawid_skene_status(posterior) != "confirmed"}


@pytest.mark.parametrize(("n_items", "reviewers"), [(300, 3), (2000, 2), (2000, 5)])
def test_several_reviewers_with_one_vote_per_item_keep_every_disconfirm(n_items, reviewers):
    """The default set-up (one review per image, batches spread over reviewers) lost every disconfirm once EM ran
    to convergence (300 items within 100 iterations; 2000 took 1,400 to 1,900)."""
    votes = [(item, f"r{item // 25 % reviewers}", item % 4 != 0) for item in range(n_items)]
    result = dawid_skene(votes, max_iter=10_000)
    assert disconfirmed_items(result) == {item for item in range(n_items) if item % 4 == 0}


def test_a_few_shared_items_teach_skills_and_lone_votes_still_count():
    _, shared_votes = simulate_crowd(n_items=5, votes_per_item=3)
    lone = [(1000 + item, f"reviewer-{item % 3}", item % 5 != 0) for item in range(2000)]
    result = dawid_skene(shared_votes + lone, max_iter=10_000)
    assert {item for item in disconfirmed_items(result) if item >= 1000} == {
        1000 + item for item in range(2000) if item % 5 == 0
    }


def test_a_lone_vote_of_a_reviewer_the_shared_items_show_worse_than_a_coin_is_read_backwards():
    # On the shared items the liar always votes against ann and bob, who agree.
    shared = [(item, r, (item % 3 != 0) != (r == "liar")) for item in range(60) for r in ("ann", "bob", "liar")]
    result = dawid_skene([*shared, ("lone", "liar", False)])
    assert result.reviewer_accuracy["liar"] < 0.1
    assert dawid_skene_status(result.item_posterior["lone"]) == "confirmed"


def test_dawid_skene_without_votes_is_empty():
    assert dawid_skene([]) == DawidSkeneResult({}, {}, None, 0)


def test_dawid_skene_stops_at_max_iter():
    _, votes = simulate_crowd(n_items=200)
    assert dawid_skene(votes, max_iter=2).iterations == 2


def test_dawid_skene_keys_results_by_the_given_ids():
    result = dawid_skene([("img-1", 7, True), ("img-2", 7, False), ("img-1", 8, True)])
    assert set(result.item_posterior) == {"img-1", "img-2"}
    assert set(result.reviewer_accuracy) == {7, 8}


@pytest.mark.parametrize(("posterior", "status"), [(0.5001, "confirmed"), (0.97, "confirmed"), (0.5, "disconfirmed")])
def test_dawid_skene_status_never_splits(posterior, status):
    assert dawid_skene_status(posterior) == status
