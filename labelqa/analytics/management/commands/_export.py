"""What the export commands share: finding the dataset and writing to --out or stdout."""

import errno
import os
from collections.abc import Iterable
from typing import NoReturn

from django.core.management.base import CommandError, OutputWrapper

from labelqa.catalog.models import Consensus, Dataset


def add_common_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True)
    parser.add_argument(
        "--consensus",
        choices=Consensus.values,
        help="How votes decide an image's status (default: the dataset's own policy, set in the admin; "
        f"{Consensus.UNANIMOUS} for a new dataset).",
    )
    parser.add_argument("--out", help="File to write (default: standard output).")


def dataset_or_error(name: str) -> Dataset:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding, as the shell passed them on
        raise CommandError(f"no dataset named {name!r}: a dataset's name is UTF-8 text") from None
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        known = ", ".join(Dataset.objects.values_list("name", flat=True)[:20]) or "none yet"
        raise CommandError(f"no dataset named {name!r} (known: {known})")
    return dataset


def write_output(command, chunks: Iterable[str], out: str | None) -> None:
    """Write the chunks, as they come, to the file `out` or to standard output."""
    if out:
        try:
            with open(out, "w", encoding="utf-8") as file:
                file.writelines(chunks)
        except OSError as exc:
            hint = "; give a file in a folder that exists" if exc.errno == errno.ENOENT else ""
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}{hint}")
        command.stderr.write(f"Wrote {out}")
        return
    try:
        for chunk in chunks:
            command.stdout.write(chunk, ending="")
        command.stdout.flush()
    except BrokenPipeError:
        _exit_for_closed_reader(command.stdout)


def _exit_for_closed_reader(stdout: OutputWrapper) -> NoReturn:
    """End the command quietly after the reader of its output went away (`| head -1`).

    The reader stopped because it had what it wanted, so this is no failure: exit 0, which `set -o pipefail`
    scripts need. Standard output goes to /dev/null first, so that the interpreter's last flush of what is still
    buffered does not fail again (the recipe in the docs of Python's signal module).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout.fileno())
    raise SystemExit(0)
