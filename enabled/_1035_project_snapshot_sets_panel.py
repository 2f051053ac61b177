# Project > Compute > Snapshot Sets, and "Create Consistent Snapshot" in the
# Instances row actions.
PANEL = 'snapshot_sets'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'compute'
ADD_PANEL = ('snapshot_dashboard.content.snapshot_sets.panel.SnapshotSets')
ADD_INSTALLED_APPS = ['snapshot_dashboard']
