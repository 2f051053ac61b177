# Project > Compute > Backup Schedules. ("Schedule Backups" in the
# Instances row actions comes with the app, _1030_snapshot_dashboard.)
PANEL = 'backup_schedules'
PANEL_DASHBOARD = 'project'
PANEL_GROUP = 'compute'
ADD_PANEL = ('snapshot_dashboard.content.backup_schedules.panel.'
             'BackupSchedules')
