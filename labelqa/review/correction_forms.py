"""The shape of the correction pass's admin form; the rules (and the reviewers' answers) live in the service."""

from django import forms

from labelqa.review.models import CorrectionPass

PER_ITEM = CorrectionPass._meta.get_field("corrections_per_item")


class CorrectionPassForm(forms.Form):
    # The dataset comes from the POST by name and is looked up (404 when unknown) before the form is read.
    action = forms.ChoiceField(choices=[("open", "Open"), ("close", "Close")])
    corrections_per_item = forms.IntegerField(
        required=False, min_value=1, max_value=25, label="Answers per image", help_text=PER_ITEM.help_text
    )
