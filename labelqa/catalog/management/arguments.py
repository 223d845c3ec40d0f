"""Argument types the catalog's commands share, so that argparse refuses a bad value naming its flag."""

import argparse
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import models


def positive_int(text: str) -> int:
    """Parse a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def model_field_value(model: type[models.Model], field_name: str) -> Callable[[str], object]:
    """Return an argument type that reads a value as the model's field does and applies the field's validators."""
    field = model._meta.get_field(field_name)

    def parse(text: str) -> object:
        try:
            return field.clean(text, None)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(" ".join(exc.messages)) from None

    return parse
