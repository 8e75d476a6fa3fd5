import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0006_lead_erasure'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='lead',
            options={'ordering': ['-created_at', '-id'], 'permissions': [('export_lead', "Can export leads' personal data")]},
        ),
        migrations.CreateModel(
            name='LeadExport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('exported_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('row_count', models.PositiveIntegerField(help_text='Leads in the export when it started.')),
                ('filters', models.TextField(blank=True, help_text="The lead list's filters and search, as in its address.")),
                ('lead_ids', models.JSONField(blank=True, default=list, help_text='The leads ticked one by one; empty when every lead matching the filters was exported.')),
                ('exported_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-exported_at', '-id'],
                'indexes': [models.Index(fields=['-exported_at', '-id'], name='leadexport_exported')],
            },
        ),
    ]
