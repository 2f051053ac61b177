from urllib import parse

from django.template import defaultfilters as filters
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import exceptions
from horizon import tables

from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content.snapshot_sets import rows as rows_module
from snapshot_dashboard.orchestration import window as window_module


class LaunchFromSet(tables.LinkAction):
    name = 'launch'
    verbose_name = _("Launch Instance")
    url = 'horizon:project:snapshot_sets:launch'
    classes = ('ajax-modal', 'btn-launch')
    icon = 'cloud-upload'
    policy_rules = (("compute", "os_compute_api:servers:create"),)

    def allowed(self, request, row=None):
        return row is not None and row.bootable and row.status == 'available'


class RestoreSet(tables.LinkAction):
    name = 'restore'
    verbose_name = _("Restore")
    url = 'horizon:project:snapshot_sets:restore'
    classes = ('ajax-modal',)
    icon = 'undo'
    policy_rules = (("compute", "os_compute_api:servers:stop"),)

    def allowed(self, request, row=None):
        return row is not None and not row.is_run and \
            row.status == 'available'


class DeleteSet(tables.DeleteAction):
    help_text = _("The set's image and every volume snapshot of the set are "
                  "deleted; the server is not touched.")
    policy_rules = (("image", "delete_image"),)

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Set", "Delete Sets", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Set", "Deleted Sets", count)

    def allowed(self, request, row=None):
        return row is None or (not row.is_run and row.status != 'deleting')

    def delete(self, request, obj_id):
        api.delete_set(request, obj_id)


class UpdateRow(tables.Row):
    ajax = True

    def get_data(self, request, obj_id):
        if obj_id.startswith(rows_module.RUN_PREFIX):
            run = api.get_run(request, obj_id[len(rows_module.RUN_PREFIX):])
            if run.set_id:
                obj_id = run.set_id
            else:
                return rows_module.Row(run=run, server_name=run.server_name)
        try:
            snapshot_set = api.get_set(request, obj_id)
            return rows_module.Row(
                snapshot_set=snapshot_set,
                server_name=api.server_name(request, snapshot_set.server_id))
        except Exception:
            exceptions.handle(request, _('Unable to read the snapshot set.'))
            raise


def consistency_badge(row):
    if not row.consistency:
        return '-'
    return render_to_string('snapshot_dashboard/_consistency_badge.html', {
        'consistency': row.consistency,
        'help': window_module.LEVEL_HELP.get(row.consistency, '')})


def detail_url(row):
    if row.is_run:
        return reverse('horizon:project:snapshot_sets:run',
                       args=[row.id[len(rows_module.RUN_PREFIX):]])
    return reverse('horizon:project:snapshot_sets:detail', args=[row.id])


STATUS_CHOICES = (
    ('available', True), ('succeeded', True),
    ('error', False), ('failed', False),
    ('creating', None), ('queued', None), ('running', None),
    ('deleting', None),
)


class SnapshotSetsTable(tables.DataTable):
    # The marker of the next page, as the API gave it (the view sets it).
    next_marker = None

    def get_marker(self):
        return parse.quote_plus(self.next_marker or '')

    name = tables.Column('name', verbose_name=_("Name"), link=detail_url)
    server = tables.Column('server_name', verbose_name=_("Instance"))
    created = tables.Column('created_at', verbose_name=_("Created"),
                            filters=(lambda when: filters.date(
                                when, 'Y-m-d H:i:s'),))
    drives = tables.Column(lambda row: ', '.join(map(str, row.drives)),
                           verbose_name=_("Drives"))
    consistency = tables.Column(consistency_badge,
                                verbose_name=_("Consistency"))
    window = tables.Column('window_ms', verbose_name=_("Window (ms)"))
    status = tables.Column('status', verbose_name=_("Status"), status=True,
                           status_choices=STATUS_CHOICES, hidden=True)
    progress = tables.Column('status_text', verbose_name=_("Status"))

    def get_object_display(self, row):
        return row.name

    class Meta:
        name = 'snapshot_sets'
        verbose_name = _("Snapshot Sets")
        status_columns = ['status']
        row_class = UpdateRow
        table_actions = (DeleteSet,)
        row_actions = (LaunchFromSet, RestoreSet, DeleteSet)


class DrivesTable(tables.DataTable):
    name = tables.Column('name', verbose_name=_("Device"))
    kind = tables.Column('kind', verbose_name=_("Kind"))
    volume = tables.Column('volume_name', verbose_name=_("Volume"),
                           empty_value='-')
    size = tables.Column('size_gb', verbose_name=_("Size (GB)"))
    snapshot = tables.Column('snapshot_id', verbose_name=_("Volume snapshot"),
                             empty_value='-')
    image = tables.Column('image_id', verbose_name=_("Image"),
                          empty_value='-')
    captured = tables.Column('captured_ms', verbose_name=_(
        "Captured (ms into the window)"), empty_value='-')
    by = tables.Column('captured_by', verbose_name=_("Captured by"),
                       empty_value='-')

    def get_object_id(self, drive):
        return drive.name

    class Meta:
        name = 'drives'
        verbose_name = _("Drives")
