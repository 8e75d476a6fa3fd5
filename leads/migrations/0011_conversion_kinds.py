from django.db import migrations

KINDS = [
    ("guide-download", "Guide or resource downloaded", False),
    ("newsletter-signup", "Newsletter signup", False),
    ("webinar-registration", "Webinar registration", False),
    ("demo-request", "Demo request", False),
    ("trial-signup", "Trial signup", False),
    ("contact-request", "Contact request", False),
    ("paid-signup", "Paid signup", True),
]


def add_kinds(apps, schema_editor):
    ConversionKind = apps.get_model("leads", "ConversionKind")
    for slug, name, is_macro in KINDS:
        ConversionKind.objects.get_or_create(slug=slug, defaults={"name": name, "is_macro": is_macro})


class Migration(migrations.Migration):
    dependencies = [("leads", "0010_touches_conversions_resource_topics")]

    operations = [migrations.RunPython(add_kinds, migrations.RunPython.noop)]
