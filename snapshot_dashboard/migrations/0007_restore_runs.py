from django.db import migrations
from django.db import models


class Migration(migrations.Migration):

    dependencies = [
        ('snapshot_dashboard', '0006_reaped_resources'),
    ]

    operations = [
        migrations.AddField(
            model_name='snapshotrun',
            name='action',
            field=models.CharField(choices=[('create', 'Take a snapshot set'), ('restore-volumes', 'Restore drives as new volumes')], default='create', max_length=32),
        ),
        migrations.AddField(
            model_name='snapshotrun',
            name='attach_to',
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
