"""The agent's WSGI application, middleware assembled in code.

fault wrapper -> request log -> keystonemiddleware auth_token -> router.
"""

import logging
import re
import time

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystonemiddleware import auth_token

from snapshot_dashboard import web
from snapshot_dashboard.agent import captures
from snapshot_dashboard.agent import conf as conf_module
from snapshot_dashboard.agent import guests
from snapshot_dashboard.agent import handlers
from snapshot_dashboard.agent import leases
from snapshot_dashboard.agent import state

LOG = logging.getLogger(__name__)


class GlanceUploader:
    """Uploads a copy to an image with the caller's token (the auth plugin
    keystonemiddleware hands on), to Glance as the caller's catalog has it.
    """

    def __init__(self, interfaces, region_name=None):
        self.interfaces = interfaces
        self.region_name = region_name

    def __call__(self, token_auth):
        if token_auth is None:
            raise web.HTTPError(401, 'No token to upload with.')
        session = ks_session.Session(auth=token_auth)
        endpoint = None
        for interface in self.interfaces:
            try:
                endpoint = session.get_endpoint(
                    service_type='image', interface=interface,
                    region_name=self.region_name)
            except ks_exceptions.EndpointNotFound:
                endpoint = None
            if endpoint:
                break
        if not endpoint:
            raise web.HTTPError(
                409, 'Your catalog has no Glance endpoint (%s).'
                % ', '.join(self.interfaces))
        base = re.sub(r'/v2/?$', '', endpoint.rstrip('/'))

        def upload(image_id, path):
            with open(path, 'rb') as f:
                session.put(
                    '%s/v2/images/%s/file' % (base, image_id),
                    data=iter(lambda: f.read(captures.CHUNK), b''),
                    headers={'Content-Type': 'application/octet-stream'})
        return upload


def make_agent(conf, clock=time.monotonic):
    hypervisor = guests.Hypervisor(conf.libvirt.connection_uri,
                                   conf.libvirt.agent_timeout,
                                   conf.libvirt.ping_timeout,
                                   conf.libvirt.thaw_guard,
                                   conf.libvirt.connect_retry)
    lease_file = state.LeaseFile(conf.agent.state_dir)
    return handlers.Agent(
        hypervisor, leases.Leases(clock=clock, lease_file=lease_file,
                                  retry_s=conf.libvirt.thaw_guard),
        conf.agent.max_budget,
        conf.agent.privileged_roles,
        captures=captures.Captures(conf.agent.capture_dir,
                                   keep_s=conf.agent.capture_keep),
        uploader=GlanceUploader(conf.agent.image_interfaces,
                                conf.agent.region_name))


def deploy(conf, agent):
    application = web.Router(handlers.ROUTES, agent)
    application = auth_token.AuthProtocol(
        application, {'oslo_config_config': conf})
    application = web.RequestLog(application, LOG)
    return web.FaultWrapper(application, 'Internal error; see the agent '
                            'log.', LOG)


def register(conf):
    conf_module.register_opts(conf)
