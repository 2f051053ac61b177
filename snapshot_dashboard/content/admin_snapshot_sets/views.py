from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import tables

from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content.admin_snapshot_sets import (
    tables as admin_tables,
)
from snapshot_dashboard.content.snapshot_sets import rows


class IndexView(tables.DataTableView):
    """Every project's sets, for an admin: the same three API calls."""

    table_class = admin_tables.AdminSnapshotSetsTable
    page_title = _("Snapshot Sets")

    def get_data(self):
        try:
            snapshot_sets = api.list_sets(self.request, all_projects=True)
            names = api.server_names(self.request, all_projects=True)
        except Exception:
            exceptions.handle(self.request,
                              _('Unable to retrieve snapshot sets.'))
            return []
        return rows.rows(snapshot_sets, [], names)
