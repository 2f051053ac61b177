"""The compute-side agent, as the orchestration calls it.

Calls carry the caller's own token (the keystoneauth session): the agent
lets a user act only on the servers of the user's project. The agent of a
server is found with a URL template; ``{host}`` in it is the server's
compute host, which Nova shows only to admins, so it is read with the
service credential where one is given.
"""

import logging

from keystoneauth1 import exceptions as ks_exceptions

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30
# A drive written back downloads its image and writes every block (the
# agent gives qemu-img half of this).
WRITE_TIMEOUT_S = 3600
# The agent's own budget outlasts the orchestration's by this much, so the
# orchestration normally ends the hold itself and the watchdog only catches
# a vanished caller; small enough that a guest is never held longer than
# the budget asked + 1 s, whoever dies (the release itself takes the rest).
WATCHDOG_MARGIN_S = 0.5


class AgentError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class AgentClient:
    def __init__(self, session, url, timeout_s=DEFAULT_TIMEOUT_S):
        self.session = session
        self.url = url.rstrip('/')
        self.timeout_s = timeout_s

    def _call(self, method, path, body=None, expect=(200,), timeout_s=None):
        response = self.session.request(
            self.url + path, method, json=body, raise_exc=False,
            authenticated=True, timeout=timeout_s or self.timeout_s)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code not in expect:
            raise AgentError(response.status_code,
                             data.get('message') or response.text)
        return response.status_code, data

    def server(self, server_id):
        return self._call('GET', '/v1/servers/%s' % server_id)[1]['server']

    def _take(self, action, server_id, budget_s):
        return self._call('POST', '/v1/servers/%s/%s' % (server_id, action),
                          {'budget_s': budget_s}, expect=(201,))[1]['lease']

    def _release(self, action, server_id, lease_id):
        """The released lease; ``released_by`` says whether it was us."""
        return self._call('POST', '/v1/servers/%s/%s' % (server_id, action),
                          {'lease': lease_id}, expect=(200, 409))[1]['lease']

    def freeze(self, server_id, budget_s):
        return self._take('freeze', server_id, budget_s)

    def thaw(self, server_id, lease_id):
        return self._release('thaw', server_id, lease_id)

    def pause(self, server_id, budget_s):
        return self._take('pause', server_id, budget_s)

    def resume(self, server_id, lease_id):
        return self._release('resume', server_id, lease_id)

    def capture(self, server_id, devices, lease_id=None, run_id=None):
        """Copy local drives (``vda``) as they are now, in one instant, for
        the run ``run_id`` (the tag the reaper goes by)."""
        body = {'devices': devices, 'lease': lease_id}
        if run_id:
            body['run'] = run_id
        return self._call('POST', '/v1/servers/%s/captures' % server_id,
                          body, expect=(201,))[1]['capture']

    def list_captures(self):
        """The copies this agent holds for nobody yet, on every server,
        with their ``run`` and ``age_s`` (a privileged role only)."""
        return self._call('GET', '/v1/captures')[1]['captures']

    def show_capture(self, server_id, capture_id):
        return self._call('GET', '/v1/servers/%s/captures/%s'
                          % (server_id, capture_id))[1]['capture']

    def export_capture(self, server_id, capture_id, images):
        """Upload the copies, ``images`` being (device, image id) pairs in
        the order to upload them; the copies are then removed."""
        return self._call(
            'POST', '/v1/servers/%s/captures/%s/export'
            % (server_id, capture_id),
            {'images': [{'device': device, 'image': image}
                        for device, image in images]},
            expect=(202,))[1]['capture']

    def write_drive(self, server_id, device, image_id):
        """Write Glance image ``image_id`` into the local drive ``device``
        (``vdb``) of the shut-off server; returns once it is written."""
        return self._call('POST', '/v1/servers/%s/drives/%s/write'
                          % (server_id, device), {'image': image_id},
                          timeout_s=WRITE_TIMEOUT_S)[1]['write']

    def delete_capture(self, server_id, capture_id):
        self._call('DELETE', '/v1/servers/%s/captures/%s'
                   % (server_id, capture_id), expect=(200, 404))


class AgentLocator:
    """Finds the agent of a server from ``url_template``.

    ``http://{host}:9797`` needs the compute host: read with
    ``service_clients`` (the service credential) when given, else with the
    caller's own clients (which Nova lets only an admin see).
    """

    def __init__(self, url_template, service_clients=None,
                 timeout_s=DEFAULT_TIMEOUT_S):
        self.url_template = url_template
        self.service_clients = service_clients
        self.timeout_s = timeout_s

    def for_server(self, clients, server_id):
        """The server's agent, or None with the reason logged."""
        url = self.url_template
        if '{host}' in url:
            lookup = self.service_clients or clients
            host = lookup.nova.servers.get(server_id).to_dict().get(
                'OS-EXT-SRV-ATTR:host')
            if not host:
                LOG.info('Compute host of %s not visible: no agent',
                         server_id)
                return None
            url = url.format(host=host)
        return AgentClient(clients.session, url, self.timeout_s)

    def every(self, clients):
        """The agent of every compute host, acting with ``clients`` (which
        must see the hosts: the service credential's)."""
        if '{host}' not in self.url_template:
            urls = {self.url_template}
        else:
            urls = {self.url_template.format(host=service.host)
                    for service in clients.nova.services.list(
                        binary='nova-compute')}
        return [AgentClient(clients.session, url, self.timeout_s)
                for url in sorted(urls)]


def probe(agent_client, server_id):
    """What the agent says of the server, or None if it cannot be asked."""
    if agent_client is None:
        return None
    try:
        return agent_client.server(server_id)
    except (AgentError, ks_exceptions.ClientException) as e:
        LOG.warning('Agent at %s unavailable for %s: %s', agent_client.url,
                    server_id, e)
        return None
