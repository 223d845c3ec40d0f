from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """Show a 0..1 share as a percentage with one decimal; empty (not 0%) when there is no value."""
    return "" if value is None else f"{value * 100:.1f}%"
