"""Dawid-Skene consensus for confirm/disconfirm votes: weigh each reviewer by estimated skill.

Pure numpy and scipy: no Django, nothing of ours.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import expit

# A Beta(2, 1) prior on each reviewer's sensitivity and specificity: two pseudo-votes agreeing with the truth and one
# against. The one against keeps a reviewer who never erred on a few items from probability 1, which would let one vote
# overrule any number of others. The extra one for keeps reviewers better than a coin where the votes cannot tell:
# items with one vote each fit any skill equally well, and under a flat prior EM drifts to "every label correct",
# ignoring every disconfirm.
PRIOR_AGREE = 2.0
PRIOR_DISAGREE = 1.0
# The share of correct labels gets a flat prior.
PRIOR_PREVALENCE = 1.0


@dataclass(frozen=True)
class DawidSkeneResult:
    """Posteriors per item, accuracies per reviewer, and how the fit went."""

    item_posterior: dict[Hashable, float]  # P(the model's label is correct)
    reviewer_accuracy: dict[Hashable, float]  # P(the reviewer's vote matches the truth)
    prevalence: float | None  # P(a label is correct) over voted items; None without votes
    iterations: int


def dawid_skene(
    votes: Iterable[tuple[Hashable, Hashable, bool]], max_iter: int = 100, tol: float = 1e-6
) -> DawidSkeneResult:
    """Estimate which labels are correct from (item, reviewer, confirm) votes by EM.

    Two-coin model: each reviewer has a sensitivity P(confirm | correct) and a specificity
    P(disconfirm | wrong). Start from the share of confirms per item, then alternate the
    maximisation and expectation steps until no posterior moves by more than tol.
    Item ids must be of one sortable type, as must reviewer ids (ints or strings).
    """
    rows = list(votes)
    if not rows:
        return DawidSkeneResult({}, {}, None, 0)
    items, reviewers, cells = _incidence(rows)
    by_item = cells.T.tocsr()
    cell_votes = _row_sums(cells)
    # Start from the soft majority vote: each item's share of confirms (odd cells).
    posterior = by_item @ np.tile([0.0, 1.0], reviewers.size) / _row_sums(by_item)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        prevalence, sensitivity, specificity = _maximise(posterior, cells, cell_votes)
        updated = expit(_log_odds(prevalence) + by_item @ _evidence(sensitivity, specificity))
        moved = np.max(np.abs(updated - posterior))
        posterior = updated
        if moved < tol:
            break

    prevalence, sensitivity, specificity = _maximise(posterior, cells, cell_votes)
    accuracy = prevalence * sensitivity + (1 - prevalence) * specificity
    return DawidSkeneResult(
        item_posterior=dict(zip(items.tolist(), posterior.tolist(), strict=True)),
        reviewer_accuracy=dict(zip(reviewers.tolist(), accuracy.tolist(), strict=True)),
        prevalence=float(prevalence),
        iterations=iterations,
    )


def dawid_skene_status(posterior: float) -> str:
    """Return confirmed when the label is at least as likely right as wrong, else disconfirmed."""
    return "confirmed" if posterior >= 0.5 else "disconfirmed"


def _incidence(
    rows: list[tuple[Hashable, Hashable, bool]],
) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
    """Return item ids, reviewer ids and the vote counts per (reviewer, vote) cell and item.

    Cell 2r holds reviewer r's disconfirms, cell 2r + 1 their confirms. The M-step sums
    posteriors into cells (cells @ posterior); the E-step sums each cell's evidence into
    items (cells.T @ evidence).
    """
    # Column by comprehension: zip(*rows) is ten times slower on a million rows.
    item_ids, reviewer_ids, confirms = ([row[i] for row in rows] for i in range(3))
    items, item_of = np.unique(np.asarray(item_ids), return_inverse=True)
    reviewers, reviewer_of = np.unique(np.asarray(reviewer_ids), return_inverse=True)
    cell = 2 * reviewer_of + np.asarray(confirms, dtype=bool)
    cells = sparse.csr_matrix((np.ones(cell.size), (cell, item_of)), shape=(2 * reviewers.size, items.size))
    return items, reviewers, cells


def _row_sums(matrix: sparse.csr_matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=1)).ravel()


def _maximise(
    posterior: np.ndarray, cells: sparse.csr_matrix, cell_votes: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Return the prevalence, sensitivities and specificities that best explain posterior."""
    # Expected votes per cell cast on correct labels and on wrong ones; columns are
    # (disconfirm, confirm), rows reviewers.
    on_correct = (cells @ posterior).reshape(-1, 2)
    on_wrong = cell_votes.reshape(-1, 2) - on_correct
    sensitivity = (on_correct[:, 1] + PRIOR_AGREE) / (on_correct.sum(axis=1) + PRIOR_AGREE + PRIOR_DISAGREE)
    specificity = (on_wrong[:, 0] + PRIOR_AGREE) / (on_wrong.sum(axis=1) + PRIOR_AGREE + PRIOR_DISAGREE)
    prevalence = (posterior.sum() + PRIOR_PREVALENCE) / (posterior.size + 2 * PRIOR_PREVALENCE)
    return prevalence, sensitivity, specificity


def _evidence(sensitivity: np.ndarray, specificity: np.ndarray) -> np.ndarray:
    """Return the log-likelihood ratio (correct vs wrong) each (reviewer, vote) cell carries."""
    disconfirm = np.log(1 - sensitivity) - np.log(specificity)
    confirm = np.log(sensitivity) - np.log(1 - specificity)
    return np.column_stack([disconfirm, confirm]).ravel()


def _log_odds(prevalence: float) -> float:
    return float(np.log(prevalence / (1 - prevalence)))
