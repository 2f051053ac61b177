"""``application`` for a WSGI server (gunicorn, uwsgi, mod_wsgi):
``gunicorn snapshot_dashboard.restapi.wsgi:application``, options from
``$SNAPSHOT_DASHBOARD_API_CONFIG`` (default
/etc/snapshot-dashboard/api.conf)."""

from snapshot_dashboard.restapi import deploy

application = deploy.loadapp()
