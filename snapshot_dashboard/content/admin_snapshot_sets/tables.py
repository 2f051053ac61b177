from django.utils.translation import gettext_lazy as _
from horizon import tables

from snapshot_dashboard.content.snapshot_sets import tables as project_tables


class AdminSnapshotSetsTable(project_tables.SnapshotSetsTable):
    project = tables.Column('project_id', verbose_name=_("Project"))

    class Meta:
        name = 'admin_snapshot_sets'
        verbose_name = _("Snapshot Sets")
        status_columns = ['status']
        columns = ('project', 'name', 'server', 'created', 'drives',
                   'consistency', 'window', 'status', 'progress')
        table_actions = (project_tables.DeleteSet,)
        row_actions = (project_tables.DeleteSet,)
