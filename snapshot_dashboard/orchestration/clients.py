"""Nova, Cinder and Glance clients on one keystoneauth1 session."""

import functools

from cinderclient import client as cinder_client
from glanceclient import client as glance_client
from novaclient import client as nova_client

from snapshot_dashboard.orchestration import microversions


class Clients:
    """The three clients the orchestration uses, made on first use.

    ``session`` is any keystoneauth1 session: the user's token in Horizon,
    a trust in the worker, the OpenStackClient's session in the CLI.
    """

    def __init__(self, session, region_name=None, interface=None):
        self.session = session
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
