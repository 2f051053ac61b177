"""The agent's WSGI application, middleware assembled in code.

fault wrapper -> request log -> keystonemiddleware auth_token -> router.
"""

import json
import logging
import re
import time

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystonemiddleware import auth_token
import webob

from snapshot_dashboard.agent import captures
from snapshot_dashboard.agent import conf as conf_module
from snapshot_dashboard.agent import guests
from snapshot_dashboard.agent import handlers
from snapshot_dashboard.agent import leases

LOG = logging.getLogger(__name__)


def _json(status, body):
    response = webob.Response(status=status, content_type='application/json',
                              charset='utf-8')
    response.text = json.dumps(body)
    return response


class Router:
    """Routes ``{path: {METHOD: handler}}``; ``{name}`` captures a part."""

    def __init__(self, routes, agent):
        self.agent = agent
        self.routes = [
            (re.compile('^%s$' % re.sub(r'\{(\w+)\}', r'(?P<\1>[^/]+)',
                                        path)), methods)
            for path, methods in routes.items()]

    def __call__(self, environ, start_response):
        request = webob.Request(environ)
        for pattern, methods in self.routes:
            match = pattern.match(request.path_info)
            if not match:
                continue
            handler = methods.get(request.method)
            if handler is None:
                response = _json(405, {'message': 'Method not allowed.'})
                response.allow = sorted(methods)
                return response(environ, start_response)
            try:
                status, body = handler(request, self.agent,
                                       **match.groupdict())
            except handlers.HTTPError as e:
                status, body = e.status, {'message': str(e)}
            except ValueError:
                status, body = 400, {'message': 'The body is not JSON.'}
            return _json(status, body)(environ, start_response)
        return _json(404, {'message': 'Not found.'})(environ, start_response)


class RequestLog:
    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status = []

        def remember(code, headers, exc_info=None):
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            return self.application(environ, remember)
        finally:
            LOG.info('%s %s %s %.1f ms project %s', environ['REQUEST_METHOD'],
                     environ.get('PATH_INFO'), (status or ['-'])[0],
                     (time.monotonic() - started) * 1000,
                     environ.get('HTTP_X_PROJECT_ID'))


class FaultWrapper:
    """Any unexpected error becomes a JSON 500, never a traceback."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            return self.application(environ, start_response)
        except Exception:
            LOG.exception('Request failed')
            return _json(500, {'message': 'Internal error; see the agent '
                               'log.'})(environ, start_response)


class GlanceUploader:
    """Uploads a copy to an image with the caller's token (the auth plugin
    keystonemiddleware hands on), to Glance as the caller's catalog has it.
    """

    def __init__(self, interfaces, region_name=None):
        self.interfaces = interfaces
        self.region_name = region_name

    def __call__(self, token_auth):
        if token_auth is None:
            raise handlers.HTTPError(401, 'No token to upload with.')
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
            raise handlers.HTTPError(
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
                                   conf.libvirt.thaw_guard)
    return handlers.Agent(
        hypervisor, leases.Leases(clock=clock), conf.agent.max_budget,
        conf.agent.privileged_roles,
        captures=captures.Captures(conf.agent.capture_dir,
                                   keep_s=conf.agent.capture_keep),
        uploader=GlanceUploader(conf.agent.image_interfaces,
                                conf.agent.region_name))


def deploy(conf, agent):
    application = Router(handlers.ROUTES, agent)
    application = auth_token.AuthProtocol(
        application, {'oslo_config_config': conf})
    application = RequestLog(application)
    return FaultWrapper(application)


def register(conf):
    conf_module.register_opts(conf)
