from django import forms

from labelqa.catalog.forms import SizeLimitedUploadForm
from labelqa.catalog.models import MAX_GOLD_RATE, Prediction


class GoldUploadForm(SizeLimitedUploadForm):
    command = "import_gold"

    file = forms.FileField(help_text="CSV with the header image,truth: the image's path and its true label.")


class GoldRateForm(forms.Form):
    rate = forms.FloatField(
        min_value=0,
        max_value=MAX_GOLD_RATE,
        help_text="Share of each grid given to gold images: 0.04 is about one in 25; 0 turns gold off.",
    )


# The session key of a truth the class page's gold form sent and the service refused: the page shows it again, to mend.
REFUSED_TRUTH = "gold_refused_truth"


class GoldMarkForm(forms.Form):
    """Mark one prediction as gold (the model's label is right or wrong), or make it ordinary again."""

    ACTIONS = {"confirm": True, "disconfirm": False, "unmark": None}

    prediction = forms.ModelChoiceField(queryset=Prediction.objects.select_related("dataset", "image"))
    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    truth = forms.CharField(max_length=200, required=False)
    next = forms.CharField(max_length=2000, required=False)
