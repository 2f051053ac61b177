"""OpenStackClient plugin: ``openstack server snapshot ...``.

The commands talk to the REST API of snapshot sets (``service``, found in
the catalog); with ``--in-process`` they run the orchestration core here
instead (``clients``), as the Horizon panels and the worker do. This module
only hands them the OSC session.
"""

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import clients as clients_module

API_NAME = 'snapshot_sets'
API_VERSION_OPTION = 'os_snapshot_sets_api_version'
DEFAULT_API_VERSION = '1'
API_VERSIONS = ('1',)


class ClientSet:
    """The REST API's client and the core's clients, on one session."""

    def __init__(self, clients, service):
        self.clients = clients
        self.service = service


def make_client(instance):
    return ClientSet(
        clients_module.Clients(instance.session,
                               region_name=instance.region_name,
                               interface=instance.interface),
        service_client.ServiceClient(instance.session,
                                     interface=instance.interface,
                                     region_name=instance.region_name))


def build_option_parser(parser):
    return parser
