"""Corrected labels, one row per image, streamed as CSV or JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from labelqa.analytics.selectors import dawid_skene_statuses
from labelqa.analytics.spreadsheet import spreadsheet_text
from labelqa.analytics.stats import consensus_status
from labelqa.catalog.models import Consensus, Dataset, Prediction
from labelqa.review.corrections import agreed_corrections
from labelqa.review.services import tallies_refresh

# DESIGN.md's columns in their order; later additions go at the end so positional readers keep working.
LABEL_COLUMNS = ("image", "label", "confidence", "status", "confirms", "disconfirms", "corrected_label")
# Written by others (file names, a model's labels): in CSV, a formula's start is neutralised (spreadsheet.py).
TEXT_COLUMNS = ("image", "label", "corrected_label")


def label_rows(dataset: Dataset, *, consensus: str | None = None) -> Iterator[dict]:
    """Yield each image's prediction with its status under the consensus policy, in image order.

    `corrected_label` is the agreed answer of the correction pass; empty when there is none or it is tied.
    """
    policy = consensus or dataset.consensus
    tallies_refresh(dataset_id=dataset.pk)
    # The analytics page's cached result when the votes have not changed since.
    status_of = dawid_skene_statuses(dataset) if policy == Consensus.DAWID_SKENE else {}
    corrected = agreed_corrections(dataset)
    rows = (
        Prediction.objects.filter(dataset=dataset)
        .order_by("image__path")
        .values_list("id", "image__path", "label", "confidence", "confirms", "disconfirms")
    )
    for pid, path, label, confidence, confirms, disconfirms in rows.iterator(chunk_size=5000):
        if policy == Consensus.DAWID_SKENE:
            status = status_of.get(pid, "unreviewed")
        else:
            status = consensus_status(confirms, disconfirms, policy)
        yield {
            "image": path,
            "label": label,
            # As stored: rounded, 84.99999999999999 became 85.0 and fell into the bucket above the report's.
            "confidence": confidence,
            "status": status,
            "confirms": confirms,
            "disconfirms": disconfirms,
            # Not beside "confirmed": under the export's consensus the model was right (a policy other than the one
            # that chose the images for correcting can say so), and the row would contradict itself.
            "corrected_label": corrected.get(pid, "") if status != "confirmed" else "",
        }


def labels_csv(dataset: Dataset, *, consensus: str | None = None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LABEL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in label_rows(dataset, consensus=consensus):
        for column in TEXT_COLUMNS:
            row[column] = spreadsheet_text(row[column])
        writer.writerow(row)
        if buffer.tell() > 65536:
            yield _drain(buffer)
    yield _drain(buffer)


def labels_jsonl(dataset: Dataset, *, consensus: str | None = None) -> Iterator[str]:
    for row in label_rows(dataset, consensus=consensus):
        yield json.dumps(row) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
