"""Test settings the heat-dashboard way: Horizon's own test settings, with
the dashboards this plugin's enabled files declare."""

import importlib.util
import os
import sys
import types

import openstack_dashboard.enabled
from openstack_dashboard.test.settings import *  # noqa: F403
from openstack_dashboard.test.settings import HORIZON_CONFIG
from openstack_dashboard.test.settings import INSTALLED_APPS
from openstack_dashboard.utils import settings as dashboard_settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _enabled_package():
    """The top-level ``enabled/`` folder (what deployers copy) as a package
    Horizon can import its files from."""
    package = types.ModuleType('snapshot_dashboard_enabled')
    package.__path__ = [os.path.join(ROOT, 'enabled')]
    package.__spec__ = importlib.util.spec_from_loader(
        'snapshot_dashboard_enabled', loader=None, is_package=True)
    package.__spec__.submodule_search_locations = package.__path__
    sys.modules['snapshot_dashboard_enabled'] = package
    return package


HORIZON_CONFIG.pop('dashboards', None)
HORIZON_CONFIG.pop('default_dashboard', None)
INSTALLED_APPS = list(INSTALLED_APPS)
dashboard_settings.update_dashboards(
    [openstack_dashboard.enabled, _enabled_package()],
    HORIZON_CONFIG, INSTALLED_APPS)
INSTALLED_APPS = list(dict.fromkeys(INSTALLED_APPS))

DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3',
                         'NAME': ':memory:'}}
SNAPSHOT_DASHBOARD_AGENT_URL = 'http://{host}:9797'
SNAPSHOT_DASHBOARD_SERVICE_AUTH = {
    'auth_url': 'http://keystone.test/v3', 'username': 'snapshot-dashboard',
    'password': 'not-used-by-unit-tests', 'project_name': 'service',
    'user_domain_name': 'Default', 'project_domain_name': 'Default'}

# The integration tests share a file database with the worker processes
# they start (tests/integration/worker_settings.py); unit tests never open
# it.
DATABASES['worker'] = {
    'ENGINE': 'django.db.backends.sqlite3',
    'NAME': os.path.join(ROOT, '.state', 'test-worker.sqlite3'),
    'TEST': {'NAME': os.path.join(ROOT, '.state', 'test-worker.sqlite3')},
}
