"""Shape of the report parameters, shared by the analytics page and the export commands."""

from django import forms

from labelqa.analytics.selectors import DEFAULT_CALIBRATION_BINS, DEFAULT_EDGES, DEFAULT_MAX_ERROR_RATIO
from labelqa.analytics.stats import validate_edges
from labelqa.catalog.models import Consensus


def parse_edges(text: str) -> list[float]:
    """Read comma-separated bucket edges such as "80,85,90,95,100"; raise ValueError saying what is wrong."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"bucket edges {text!r} must be numbers separated by commas, e.g. 80,85,90,95,100")
    return validate_edges(numbers)


DEFAULT_EDGES_TEXT = ",".join(f"{edge:g}" for edge in DEFAULT_EDGES)


class ReportParamsForm(forms.Form):
    # Placeholders show the defaults that an empty field means: the page's form is always bound to the query.
    edges = forms.CharField(
        required=False,
        help_text="Bucket edges in percent.",
        widget=forms.TextInput(attrs={"placeholder": DEFAULT_EDGES_TEXT}),
    )
    max_error_ratio = forms.FloatField(
        min_value=0,
        required=False,
        help_text="Incorrect per correct allowed above the threshold (0.1 = 1 in 10).",
        widget=forms.NumberInput(attrs={"placeholder": f"{DEFAULT_MAX_ERROR_RATIO:g}", "step": "any"}),
    )
    consensus = forms.ChoiceField(choices=[("", "dataset default"), *Consensus.choices], required=False)

    def clean_edges(self) -> list[float]:
        text = self.cleaned_data.get("edges") or DEFAULT_EDGES_TEXT
        try:
            return parse_edges(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc))

    def clean_max_error_ratio(self) -> float:
        value = self.cleaned_data.get("max_error_ratio")
        return DEFAULT_MAX_ERROR_RATIO if value is None else value


class CalibrationParamsForm(forms.Form):
    label = forms.CharField(required=False, help_text="One class; all classes when empty.")
    consensus = forms.ChoiceField(choices=[("", "dataset default"), *Consensus.choices], required=False)
    bins = forms.IntegerField(initial=DEFAULT_CALIBRATION_BINS, min_value=2, max_value=50, required=False)
    download = forms.BooleanField(required=False)

    def clean_label(self) -> str | None:
        return self.cleaned_data.get("label") or None

    def clean_bins(self) -> int:
        value = self.cleaned_data.get("bins")
        return DEFAULT_CALIBRATION_BINS if value is None else value
