"""What the mini-cloud benchmarks share: their clients, waiting, and
removing what they made. Imported by the scripts beside it."""

import os
import time

import openstack.config

from snapshot_dashboard.orchestration import clients as clients_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STATE = os.path.join(REPO, '.state', 'minicloud')
AGENT = 'http://127.0.0.1:9797'
GUEST_IMAGE = 'snapguest'


def clients(cloud='minicloud-demo'):
    """The orchestration's clients as ``cloud`` of the mini-cloud's
    clouds.yaml."""
    region = openstack.config.OpenStackConfig(config_files=[os.path.join(
        STATE, 'clouds.yaml')]).get_one(cloud)
    return clients_module.Clients(region.get_session(),
                                  region_name=region.region_name)


def wait(what, check, timeout_s=600, interval_s=1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval_s)
    raise SystemExit('timed out waiting for %s' % what)


def settled(clients, server_id, status):
    server = clients.nova.servers.get(server_id)
    return (server.status == status
            and not getattr(server, 'OS-EXT-STS:task_state', None))


def create_server(clients, name, volume_backed):
    """A server of the guest image, as the demo user, without a network:
    image-backed (1 GB root and 1 GB ephemeral) or booted from a 1 GB
    volume. Returns it without waiting."""
    image = next(i for i in clients.glance.images.list()
                 if i['name'] == GUEST_IMAGE)
    flavor = clients.nova.flavors.find(
        name='snap.tiny-noeph' if volume_backed else 'snap.tiny')
    kwargs = {'nics': 'none'}
    if volume_backed:
        kwargs['block_device_mapping_v2'] = [{
            'boot_index': 0, 'uuid': image['id'], 'source_type': 'image',
            'destination_type': 'volume', 'volume_size': 1,
            'delete_on_termination': True}]
    return clients.nova.servers.create(
        name, None if volume_backed else image['id'], flavor, **kwargs)


def boot(clients, name, volume_backed):
    """``create_server``, once active: its id."""
    server = create_server(clients, name, volume_backed)
    wait('%s active' % name, lambda: settled(clients, server.id, 'ACTIVE'))
    return server.id


def delete_volume(clients, volume_id):
    """Delete the volume once it can go: True once it is gone or going."""
    try:
        volume = clients.cinder.volumes.get(volume_id)
        if volume.status not in ('available', 'error'):
            return False
        clients.cinder.volumes.delete(volume_id)
    except Exception as e:
        return 'not found' in str(e).lower() or 'could not be found' in str(
            e).lower()
    return True
