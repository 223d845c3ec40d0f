"""What the export commands share: finding the dataset and writing to --out or stdout."""

import errno
from pathlib import Path

from django.core.management.base import CommandError

from labelqa.catalog.models import Consensus, Dataset


def add_common_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--consensus", choices=Consensus.values, help="Default: the dataset's policy.")
    parser.add_argument("--out", help="File to write (default: standard output).")


def dataset_or_error(name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        known = ", ".join(Dataset.objects.values_list("name", flat=True)[:20]) or "none yet"
        raise CommandError(f"no dataset named {name!r} (known: {known})")
    return dataset


def write_output(command, text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            hint = "; give a file in a folder that exists" if exc.errno == errno.ENOENT else ""
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}{hint}")
        command.stderr.write(f"Wrote {out}")
    else:
        command.stdout.write(text, ending="")
