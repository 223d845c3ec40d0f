"""What a model name means, decided without loading torch: the built-in model, or a TorchScript file."""

from pathlib import Path

DEFAULT_MODEL = "efficientnet-lite0"


def model_file_missing(model: str) -> bool:
    """Return whether `model` names a TorchScript file that this machine does not have."""
    return model != DEFAULT_MODEL and not Path(model).is_file()
