"""Fencing of running runs: a claim token and one run per server."""

from django.db import migrations
from django.db import models


def forwards(apps, schema_editor):
    """A run already running holds its server (the first one, should an
    older worker have started two)."""
    runs = apps.get_model('snapshot_dashboard', 'SnapshotRun').objects.using(
        schema_editor.connection.alias)
    held = set()
    for run in runs.filter(state='running').order_by('started_at'):
        if run.server_id not in held:
            held.add(run.server_id)
            runs.filter(pk=run.pk).update(holding_server=run.server_id)


class Migration(migrations.Migration):

    dependencies = [
        ('snapshot_dashboard', '0004_run_budget'),
    ]

    operations = [
        migrations.AddField(
            model_name='snapshotrun',
            name='claim',
            field=models.CharField(blank=True, max_length=36),
        ),
        migrations.AddField(
            model_name='snapshotrun',
            name='holding_server',
            field=models.CharField(max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
