"""The REST API's WSGI application, middleware assembled in code.

fault wrapper -> request log -> version document at ``/`` without a token,
else keystonemiddleware ``auth_token`` -> database connections -> router.
"""

import logging
import os

from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_log import log

from snapshot_dashboard import web
from snapshot_dashboard.restapi import conf as conf_module

LOG = logging.getLogger(__name__)
CONFIG_ENV = 'SNAPSHOT_DASHBOARD_API_CONFIG'
DEFAULT_CONFIG = '/etc/snapshot-dashboard/api.conf'


class DatabaseConnections:
    """Django's request cycle does this for its views: a connection that
    broke or outlived its age is not reused by the next request."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        from django import db
        db.close_old_connections()
        try:
            return self.application(environ, start_response)
        finally:
            db.close_old_connections()


class VersionsWithoutToken:
    """``GET /`` tells clients which versions there are, token or not."""

    def __init__(self, authenticated, versions):
        self.authenticated = authenticated
        self.versions = versions

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO', '/') in ('', '/'):
            return self.versions(environ, start_response)
        return self.authenticated(environ, start_response)


def deploy(conf, service):
    """The application around ``service`` (a handlers.common.Service)."""
    from snapshot_dashboard.restapi import handlers
    router = web.Router(handlers.ROUTES, service)
    application = auth_token.AuthProtocol(DatabaseConnections(router),
                                          {'oslo_config_config': conf})
    application = VersionsWithoutToken(application, router)
    application = web.RequestLog(application, LOG)
    return web.FaultWrapper(application, 'Internal error; see the log of '
                            'snapshot-dashboard-api.', LOG)


def setup_django(conf):
    os.environ.setdefault('DJANGO_SETTINGS_MODULE',
                          conf.api.django_settings_module)
    import django
    django.setup()


def load_conf(argv=None, config_files=None):
    conf = cfg.ConfigOpts()
    conf_module.register_opts(conf)
    conf(argv or [], project='snapshot-dashboard',
         prog='snapshot-dashboard-api', default_config_files=config_files)
    return conf


def make_service(conf):
    """Django set up, then the service: policy, agent locator."""
    setup_django(conf)
    # Settings and models import only once Django is set up.
    from snapshot_dashboard import credentials
    from snapshot_dashboard.restapi import policies
    from snapshot_dashboard.restapi.handlers import common
    return common.Service(conf, policies.enforcer(conf),
                          agent_locator=credentials.agent_locator())


def loadapp(config_file=None):
    """The application for any WSGI server (``wsgi.application``): options
    from ``config_file``, else ``$SNAPSHOT_DASHBOARD_API_CONFIG``, else
    /etc/snapshot-dashboard/api.conf."""
    path = config_file or os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)
    conf = load_conf(config_files=[path] if os.path.exists(path) else [])
    log.setup(conf, 'snapshot-dashboard-api')
    return deploy(conf, make_service(conf))
