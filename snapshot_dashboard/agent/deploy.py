"""The agent's WSGI application, middleware assembled in code.

fault wrapper -> request log -> keystonemiddleware auth_token -> router.
"""

import logging
import os
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
from snapshot_dashboard.agent import writes

LOG = logging.getLogger(__name__)


# Seconds a socket operation with Glance may wait (connect, send, read).
GLANCE_TIMEOUT_S = 300


class GlanceUploader:
    """Uploads a copy to an image with the caller's token (the auth plugin
    keystonemiddleware hands on), to Glance as the caller's catalog has it.
    """

    def __init__(self, interfaces, region_name=None):
        self.interfaces = interfaces
        self.region_name = region_name

    def glance(self, token_auth):
        """A session with the caller's token, and Glance's base URL."""
        if token_auth is None:
            raise web.HTTPError(401, 'No token to reach Glance with.')
        # A Glance that stops answering fails the upload, not the agent.
        session = ks_session.Session(auth=token_auth,
                                     timeout=GLANCE_TIMEOUT_S)
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
        return session, re.sub(r'/v2/?$', '', endpoint.rstrip('/'))

    def __call__(self, token_auth):
        session, base = self.glance(token_auth)

        def upload(image_id, path, finish=None):
            def chunks(f):
                yield from iter(lambda: f.read(captures.CHUNK), b'')
                if finish is not None:
                    finish()  # raises to end the upload unfinished
            with open(path, 'rb') as f:
                session.put(
                    '%s/v2/images/%s/file' % (base, image_id),
                    data=chunks(f),
                    headers={'Content-Type': 'application/octet-stream'})
        return upload

    def downloader(self, token_auth):
        """``download(image_id, path, max_bytes)``: the image's data into
        ``path``, with the caller's token; returns its ``disk_format``. An
        image the caller cannot see is a 404; one without data, or larger
        than ``max_bytes`` (by Glance's word, then by what comes), a 409."""
        session, base = self.glance(token_auth)

        def download(image_id, path, max_bytes):
            url = '%s/v2/images/%s' % (base, image_id)
            image = _glance_call(session.get, url, image_id).json()
            if image.get('status') != 'active':
                raise web.HTTPError(409, 'Image %s is %s, not active.'
                                    % (image_id, image.get('status')))
            too_big = web.HTTPError(409, 'Image %s is larger than the drive '
                                    'it is for.' % image_id)
            if (image.get('size') or 0) > max_bytes:
                raise too_big
            response = _glance_call(session.get, url + '/file', image_id,
                                    stream=True)
            written = 0
            with open(path, 'wb') as f:
                for chunk in response.iter_content(captures.CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        response.close()
                        raise too_big
                    f.write(chunk)
            return image.get('disk_format')
        return download


def _glance_call(method, url, image_id, **kwargs):
    try:
        return method(url, **kwargs)
    except ks_exceptions.NotFound:
        raise web.HTTPError(404, 'No image %s.' % image_id) from None


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
                                conf.agent.region_name),
        writes=writes.Writes(os.path.join(conf.agent.capture_dir,
                                          'writes')))


def deploy(conf, agent):
    application = web.Router(handlers.ROUTES, agent)
    application = auth_token.AuthProtocol(
        application, {'oslo_config_config': conf})
    application = web.RequestLog(application, LOG)
    return web.FaultWrapper(application, 'Internal error; see the agent '
                            'log.', LOG)


def register(conf):
    conf_module.register_opts(conf)
