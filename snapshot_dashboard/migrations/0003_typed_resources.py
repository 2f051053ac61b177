"""Runs recorded before progress events were typed kept each resource as
the text of its undo ('delete volume snapshot <id>', 'delete image <id>',
'remove capture <id>'). Recovery reads ``{'kind', 'id'}`` records now, so
the rows of runs queued or running across the upgrade are rewritten once.
"""

from django.db import migrations

LEGACY_PREFIXES = (
    ('delete volume snapshot ', 'volume-snapshot'),
    ('delete image ', 'image'),
    ('remove capture ', 'agent-copy'),
)


def _typed(resource):
    if not isinstance(resource, str):
        return resource
    for prefix, kind in LEGACY_PREFIXES:
        if resource.startswith(prefix):
            return {'kind': kind, 'id': resource[len(prefix):].strip()}
    raise ValueError('Unknown resource record %r' % resource)


def forwards(apps, schema_editor):
    runs = apps.get_model('snapshot_dashboard', 'SnapshotRun').objects.using(
        schema_editor.connection.alias)
    for run in runs.only('pk', 'resources').iterator():
        typed = [_typed(r) for r in run.resources]
        if typed != run.resources:
            runs.filter(pk=run.pk).update(resources=typed)


class Migration(migrations.Migration):

    dependencies = [
        ('snapshot_dashboard', '0002_schedules'),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
