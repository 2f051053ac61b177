# Admin > Compute > Snapshot Sets: every project's sets.
PANEL = 'snapshot_sets'
PANEL_DASHBOARD = 'admin'
PANEL_GROUP = 'compute'
ADD_PANEL = ('snapshot_dashboard.content.admin_snapshot_sets.panel.'
             'AdminSnapshotSets')
