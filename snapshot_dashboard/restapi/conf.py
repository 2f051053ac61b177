"""Options of the REST API (``[api]``), for oslo.config; the database, the
service user and the agent URL are the Django settings the worker reads
(``DJANGO_SETTINGS_MODULE``)."""

from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_log import log
from oslo_policy import opts as policy_opts

from snapshot_dashboard import web

api_opts = [
    cfg.HostAddressOpt('bind_host', default='127.0.0.1',
                       help='Address snapshot-dashboard-api listens on '
                            '(its own server; under a WSGI server, that '
                            'server\'s).'),
    cfg.PortOpt('bind_port', default=9798, help='Port it listens on.'),
    cfg.IntOpt('threads', default=8, min=1,
               help='Threads of its own WSGI server.'),
    cfg.IntOpt('max_body_bytes', default=web.DEFAULT_MAX_BODY_BYTES, min=1,
               help='Largest request body accepted (413 above).'),
    cfg.StrOpt('django_settings_module',
               default='openstack_dashboard.settings',
               help='Django settings with the database of the runs and '
                    'schedules, SNAPSHOT_DASHBOARD_SERVICE_AUTH and '
                    'SNAPSHOT_DASHBOARD_AGENT_URL: the worker\'s. '
                    'DJANGO_SETTINGS_MODULE in the environment wins.'),
    cfg.StrOpt('interface', default='public',
               choices=['public', 'internal', 'admin'],
               help='Endpoint interface of Nova, Cinder and Glance, from the '
                    'caller\'s catalog.'),
    cfg.StrOpt('region_name', help='Region of those endpoints.'),
]


def list_opts():
    """For oslo-config-generator (namespace snapshot_dashboard.api)."""
    return [('api', api_opts)]


def register_opts(conf):
    conf.register_opts(api_opts, group='api')
    for group, options in auth_token.list_opts():
        conf.register_opts(options, group=group)
    log.register_options(conf)
    policy_opts.set_defaults(conf)
