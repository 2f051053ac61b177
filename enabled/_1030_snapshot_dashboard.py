# The snapshot_dashboard Django app: its models, templates and static files.
# The panels' own enabled files (_1035_..., _1036_...) build on it; the
# app adds "Create Consistent Snapshot" to the Instances row actions.
FEATURE = True
ADD_INSTALLED_APPS = ['snapshot_dashboard']
ADD_SCSS_FILES = ['snapshot_dashboard/scss/snapshot_dashboard.scss']
AUTO_DISCOVER_STATIC_FILES = True
