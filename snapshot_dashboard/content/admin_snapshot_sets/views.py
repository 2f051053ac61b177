from django.utils.translation import gettext_lazy as _

from snapshot_dashboard.content.admin_snapshot_sets import (
    tables as admin_tables,
)
from snapshot_dashboard.content.snapshot_sets import views


class IndexView(views.PagedSetsView):
    """Every project's sets, for an admin, a page at a time."""

    table_class = admin_tables.AdminSnapshotSetsTable
    page_title = _("Snapshot Sets")
    all_projects = True
