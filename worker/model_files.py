"""What a model name means, decided without loading torch: the built-in model, or a TorchScript file."""

from pathlib import Path

DEFAULT_MODEL = "efficientnet-lite0"


def model_outside(model: str, allowed_dirs: list[str]) -> bool:
    """Return whether `model` is a file outside every allowed directory (none listed: no file is outside)."""
    if model == DEFAULT_MODEL or not allowed_dirs:
        return False
    # Resolved, so that neither `..` nor a symbolic link inside an allowed directory leads out of it.
    return not any(Path(model).resolve().is_relative_to(Path(d).resolve()) for d in allowed_dirs)


def model_file_missing(model: str) -> bool:
    """Return whether `model` names a TorchScript file that this machine does not have."""
    return model != DEFAULT_MODEL and not Path(model).is_file()
