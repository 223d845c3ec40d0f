from django import template

register = template.Library()


@register.filter
def indefinite_article(word) -> str:
    """Return "an" before a word that starts with a vowel letter, else "a" ("an Egyptian cat", "a Dog").

    By the first letter, not the sound: class names seldom start with a silent h or a "you" sound.
    """
    return "an" if str(word)[:1].lower() in ("a", "e", "i", "o", "u") else "a"
