"""The one patch: "Create Consistent Snapshot" and "Schedule Backups" in the
Instances row actions.

Horizon 27 has no declarative hook for a row action on the Django
Instances table, and ``Meta.row_actions`` is read when the table class is
made. So ``install()`` subclasses the table with our actions right after
Horizon's own "Create Snapshot", and puts the subclass where Horizon looks:
``IndexView.table_class`` and ``instances.tables.InstancesTable`` (which
``DetailView`` reads by module attribute). Idempotent; its regression test
fails loudly if Horizon changes.
"""

from django.utils.translation import gettext_lazy as _
from horizon import tables
from openstack_dashboard import policy
from openstack_dashboard.dashboards.project.instances import (
    tables as instance_tables,
)
from openstack_dashboard.dashboards.project.instances import (
    views as instance_views,
)


class CreateConsistentSnapshot(policy.PolicyTargetMixin, tables.LinkAction):
    name = 'consistent_snapshot'
    verbose_name = _("Create Consistent Snapshot")
    url = 'horizon:project:snapshot_sets:create'
    classes = ('ajax-modal',)
    icon = 'camera'
    policy_rules = (("compute", "os_compute_api:snapshot"),)

    def allowed(self, request, instance=None):
        return (instance.status in instance_tables.SNAPSHOT_READY_STATES
                and not instance_tables.is_deleting(instance))


class ScheduleBackups(policy.PolicyTargetMixin, tables.LinkAction):
    name = 'schedule_backups'
    verbose_name = _("Schedule Backups")
    url = 'horizon:project:backup_schedules:create'
    classes = ('ajax-modal',)
    icon = 'clock-o'
    policy_rules = (("compute", "os_compute_api:snapshot"),)

    def allowed(self, request, instance=None):
        return not instance_tables.is_deleting(instance)


def install():
    table = instance_views.IndexView.table_class
    if getattr(table, 'snapshot_dashboard_patched', False):
        return table
    actions = list(table._meta.row_actions)
    if CreateConsistentSnapshot not in actions:
        at = actions.index(instance_tables.CreateSnapshot) + 1
        actions[at:at] = [CreateConsistentSnapshot, ScheduleBackups]

    class Meta(table.Meta):
        row_actions = tuple(actions)

    patched = type(table.__name__, (table,), {
        'Meta': Meta, '__module__': table.__module__,
        'snapshot_dashboard_patched': True})
    instance_views.IndexView.table_class = patched
    instance_tables.InstancesTable = patched
    return patched
