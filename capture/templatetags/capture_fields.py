from django import template

register = template.Library()


@register.simple_tag
def field_value(data, name):
    """What was typed in the field (a QueryDict's or a dict's value), to show the form again with it."""
    if not data:
        return ""
    value = data.get(name, "")
    return value if isinstance(value, (str, bool)) else ""


@register.simple_tag
def field_error(errors, name):
    return (errors or {}).get(name, "")
