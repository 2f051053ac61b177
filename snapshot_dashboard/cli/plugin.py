"""OpenStackClient plugin: ``openstack server snapshot ...``.

The commands share the orchestration core with the Horizon panels and the
worker; this module only hands them the OSC session.
"""

from snapshot_dashboard.orchestration import clients

API_NAME = 'snapshot_sets'
API_VERSION_OPTION = 'os_snapshot_sets_api_version'
DEFAULT_API_VERSION = '1'
API_VERSIONS = ('1',)


def make_client(instance):
    return clients.Clients(instance.session,
                           region_name=instance.region_name,
                           interface=instance.interface)


def build_option_parser(parser):
    return parser
