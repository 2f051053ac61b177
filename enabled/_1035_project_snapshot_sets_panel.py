# Project > Compute > Snapshot Sets. ("Create Consistent Snapshot" in the
# Instances row actions comes with the app, _1030_snapshot_dashboard.)
PANEL = 'snapshot_sets'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'compute'
ADD_PANEL = ('snapshot_dashboard.content.snapshot_sets.panel.SnapshotSets')
