from django.utils.translation import gettext_lazy as _
from horizon import tables

from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content.snapshot_sets import tables as project_tables


class AdminDeleteSet(project_tables.DeleteSet):
    policy_rules = (("compute", "context_is_admin"),)

    def delete(self, request, obj_id):
        api.delete_set(request, obj_id, any_project=True)


class AdminSnapshotSetsTable(project_tables.SnapshotSetsTable):
    project = tables.Column('project_id', verbose_name=_("Project"))

    class Meta:
        name = 'admin_snapshot_sets'
        verbose_name = _("Snapshot Sets")
        status_columns = ['status']
        columns = ('project', 'name', 'server', 'created', 'drives',
                   'consistency', 'window', 'status', 'progress')
        table_actions = (AdminDeleteSet,)
        row_actions = (AdminDeleteSet,)
