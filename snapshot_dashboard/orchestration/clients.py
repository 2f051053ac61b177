"""Nova, Cinder and Glance clients on one keystoneauth1 session."""

import concurrent.futures
import functools

from cinderclient import client as cinder_client
from glanceclient import client as glance_client
from keystoneauth1 import session as ks_session
from novaclient import client as nova_client
import requests

from snapshot_dashboard.orchestration import microversions

# Connections kept open per host: every drive's capture is begun at once,
# and requests beyond the pool would each open and close a connection.
POOL_SIZE = 32


def widen_pool(session, size=POOL_SIZE):
    """Let a keystoneauth1 ``session`` keep ``size`` connections per host
    (requests keeps 10). Adapters of other kinds are left as they are."""
    adapters = getattr(getattr(session, 'session', None), 'adapters', None)
    for prefix, adapter in list((adapters or {}).items()):
        if (type(adapter) not in (requests.adapters.HTTPAdapter,
                                  ks_session.TCPKeepAliveAdapter)
                or adapter._pool_maxsize >= size):
            continue
        options = {}
        if isinstance(adapter, ks_session.TCPKeepAliveAdapter):
            options = {'tls_ciphers': adapter.tls_ciphers,
                       'tls_min_version': adapter.tls_min_version}
        session.session.mount(prefix, type(adapter)(
            pool_connections=adapter._pool_connections, pool_maxsize=size,
            max_retries=adapter.max_retries, **options))


def each(function, items):
    """``function`` of every item, called at once from threads (as many as
    the session's pool holds connections), results in order. The first
    error is raised once every call has ended."""
    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(len(items), POOL_SIZE)) as pool:
        futures = [pool.submit(function, item) for item in items]
        concurrent.futures.wait(futures)
        return [f.result() for f in futures]


class Clients:
    """The three clients the orchestration uses, made on first use.

    ``session`` is any keystoneauth1 session: the user's token in Horizon,
    a trust in the worker, the OpenStackClient's session in the CLI.
    """

    def __init__(self, session, region_name=None, interface=None):
        self.session = session
        widen_pool(session)
        self.region_name = region_name
        self.interface = interface

    @property
    def project_id(self):
        return self.session.get_project_id()

    def _endpoint(self, interface_keyword):
        options = {'region_name': self.region_name}
        if self.interface:
            options[interface_keyword] = self.interface
        return options

    @functools.cached_property
    def nova(self):
        return nova_client.Client(
            microversions.NOVA, session=self.session,
            **self._endpoint('endpoint_type'))

    def nova_at(self, version):
        """A Nova client at microversion ``version``, for the one call that
        needs it."""
        return nova_client.Client(version, session=self.session,
                                  **self._endpoint('endpoint_type'))

    def nova_supports(self, version):
        """Whether the cloud's Nova serves microversion ``version``."""
        def parse(text):
            return tuple(int(p) for p in text.split('.'))
        try:
            current = self.nova.versions.get_current()
        except Exception:
            return False
        return bool(current and getattr(current, 'version', '')) and parse(
            current.version) >= parse(version)

    @functools.cached_property
    def cinder(self):
        return cinder_client.Client(
            microversions.CINDER, session=self.session,
            **self._endpoint('endpoint_type'))

    @functools.cached_property
    def glance(self):
        return glance_client.Client(
            microversions.GLANCE, session=self.session,
            **self._endpoint('interface'))
