import os

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def assets_root():
    """Where templates/ and static/ are: in the package once built, else in
    the source checkout one level up (an editable install)."""
    if os.path.isdir(os.path.join(PACKAGE_DIR, 'templates')):
        return PACKAGE_DIR
    return os.path.dirname(PACKAGE_DIR)


class SnapshotDashboardConfig(AppConfig):
    name = 'snapshot_dashboard'
    verbose_name = _('Consistent snapshots')
    default_auto_field = 'django.db.models.BigAutoField'
    # Django's app-directories template loader and static finder look in
    # <path>/templates and <path>/static.
    path = assets_root()

    def ready(self):
        # Horizon's Instances table gets our row action; outside Horizon
        # (the worker without the dashboards) there is nothing to patch.
        from django.conf import settings
        if 'openstack_dashboard.dashboards.project' in settings.INSTALLED_APPS:
            from snapshot_dashboard.content import instances_action
            instances_action.install()
