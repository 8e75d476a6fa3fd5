"""A sequence's sender is someone its editor may send as: the permission to choose another user."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nurturing', '0006_suppression_keyed_hash'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='sequence',
            options={'ordering': ['name'], 'permissions': [('send_as_others', 'Can make another user the sender of a sequence')]},
        ),
        migrations.AlterField(
            model_name='sequence',
            name='sender',
            field=models.ForeignKey(blank=True, help_text="Who the emails come from. Empty: each lead's owner (their rep), with replies going to that rep. You can choose yourself; choosing someone else needs the permission to send as others (managers have it).", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
    ]
