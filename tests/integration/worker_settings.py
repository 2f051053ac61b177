"""Settings of the worker processes the integration tests start: the test
settings, the shared file database as ``default``, and the mini-cloud's
service user and agent."""

import json
import os

from tests.dashboard.settings import *  # noqa: F403
from tests.dashboard.settings import DATABASES
from tests.dashboard.settings import ROOT

DATABASES = {'default': DATABASES['worker']}

with open(os.environ.get('SNAPSHOT_DASHBOARD_CLOUDS_YAML', os.path.join(
        ROOT, '.state', 'minicloud', 'clouds.yaml'))) as f:
    _service = json.load(f)['clouds']['minicloud-service']['auth']
SNAPSHOT_DASHBOARD_SERVICE_AUTH = {
    'auth_url': _service['auth_url'], 'username': _service['username'],
    'password': _service['password'],
    'project_name': _service['project_name'],
    'user_domain_name': 'Default', 'project_domain_name': 'Default'}
SNAPSHOT_DASHBOARD_AGENT_URL = 'http://127.0.0.1:9797'
