from django.db import migrations
from django.db import models


class Migration(migrations.Migration):

    dependencies = [
        ('snapshot_dashboard', '0007_restore_runs'),
    ]

    operations = [
        migrations.AlterField(
            model_name='snapshotrun',
            name='action',
            field=models.CharField(choices=[('create', 'Take a snapshot set'), ('restore-volumes', 'Restore drives as new volumes'), ('restore-in-place', 'Restore drives in place')], default='create', max_length=32),
        ),
        migrations.AddField(
            model_name='snapshotrun',
            name='undo_set_id',
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
