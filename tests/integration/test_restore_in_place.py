"""Restoring a server in place to one of its sets, on the mini-cloud, as
the demo user, on real guests: through the CLI, the REST API and the
worker; the faults in the middle through the orchestration core, with the
fault made for real in the services."""

import json
import os
import time

import pytest

from snapshot_dashboard.orchestration import agent
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import restore
from snapshot_dashboard.orchestration import sets
from tests.integration.conftest import Guest
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for
from tests.integration.test_snapshot_sets import create
from tests.integration.test_snapshot_sets import write_markers

GUEST_IMAGE = 'snapguest'
DEVICES = ('/dev/vda', '/dev/vdb', '/dev/vdc')  # of the image-backed server
AGENT_URL = 'http://127.0.0.1:9797'
GLANCE_STORE = os.path.join(os.path.dirname(__file__), '..', '..', '.state',
                            'minicloud', 'data', 'glance', 'images')


def boot(openstack_cli, demo, name, flavor, *args):
    openstack_cli('demo', '--os-compute-api-version', '2.79', 'server',
                  'create', '--flavor', flavor, '--nic', 'none', '--wait',
                  *args, name)
    return server_by_name(demo, name)


def attach_new_volume(demo, server, name):
    volume = demo.cinder.volumes.create(1, name=name.replace('-data', ' data'))
    wait_for('volume %s' % name, lambda: demo.cinder.volumes.get(
        volume.id).status == 'available')
    demo.nova.volumes.create_server_volume(server.id, volume.id)
    wait_for('volume %s attached' % name, lambda: demo.cinder.volumes.get(
        volume.id).status == 'in-use')
    return volume.id


def marks(guest, demo, server_id):
    """The marker (its id, before the "-<drive>" it was written with) on
    each drive of the server, by Nova's name for the drive, once every
    drive is mounted. The guest names drives by their slots, which a
    restart may reorder: a volume is found by its serial (its id), a
    local disk (first in Nova's domain) by its name."""
    devices = {volume_id[:20]: device for device, volume_id in attachments(
        demo, demo.nova.servers.get(server_id)).items()}
    guest.wait_until_answering()
    script = ('for d in /sys/block/vd*; do n=${d##*/}; echo "$n|$(cat '
              '$d/serial 2>/dev/null)|$(cat /mnt/$n/marker 2>/dev/null '
              '|| echo -)"; done')

    def read():
        found = {}
        for line in guest.shell(script).split():
            name, serial, marker = line.split('|')
            if marker == '-':
                return None
            found[devices.get(serial, '/dev/' + name)] = marker.split('-')[0]
        return found
    return wait_for('the drives mounted', read, timeout_s=120)


def mounted(guest, drives):
    guest.wait_until_answering()
    wait_for('%s mounted' % ', '.join(drives), lambda: all(
        ' /mnt/%s ' % d in guest.shell('cat /proc/mounts') for d in drives),
        timeout_s=120)


def attachments(demo, server):
    return {a.device: a.volumeId
            for a in demo.nova.volumes.get_server_volumes(server.id)}


def run_resources(demo, admin, run_id):
    """What carries the run's tag: volumes, volume snapshots, images."""
    return (restore.tagged_volumes(demo.cinder, run_id),
            [s for s in demo.cinder.volume_snapshots.list(search_opts={
                'metadata': {properties.RUN: run_id}})
             if (s.metadata or {}).get(properties.RUN) == run_id],
            [i for i in demo.glance.images.list(
                filters={properties.RUN: run_id})
             if i.get(properties.RUN) == run_id])


def tear_down(demo, server_id, set_ids):
    """The server, the sets, every volume it had or a restore made or
    replaced (all named after the server)."""
    server = demo.nova.servers.get(server_id)
    volume_ids = set(attachments(demo, server).values()) | {
        v.id for v in demo.cinder.volumes.list()
        if (v.name or '').startswith(server.name + ' ')}
    demo.nova.servers.delete(server_id)
    wait_for('server %s to go' % server_id, lambda: not [
        s for s in demo.nova.servers.list() if s.id == server_id])
    for set_id in set_ids:
        if set_id:
            try:
                sets.delete_set(demo, set_id)
            except errors.SetNotFound:
                pass
    for volume_id in volume_ids:
        wait_for('volume %s free' % volume_id, lambda v=volume_id: (
            demo.cinder.volumes.get(v).status in ('available', 'error')))
        wait_for('volume %s deleted' % volume_id, lambda v=volume_id:
                 _deleted(demo, v), timeout_s=120, interval_s=3)


def _deleted(demo, volume_id):
    try:
        demo.cinder.volumes.delete(volume_id)
    except Exception:  # still the source of a snapshot being deleted
        return False
    return True


@pytest.fixture
def image_server(openstack_cli, demo, admin):
    """An image-backed server of its own: root, ephemeral disk, a volume."""
    server = boot(openstack_cli, demo, 'inplace-image', 'snap.tiny',
                  '--image', GUEST_IMAGE)
    volume_id = attach_new_volume(demo, server, 'inplace-image-data')
    guest = Guest(admin, server.id)
    mounted(guest, ['vda', 'vdb', 'vdc'])
    made = []
    yield server, guest, volume_id, made
    tear_down(demo, server.id, made)


def test_every_drive_restored_in_place_then_the_restore_undone(
        openstack_cli, demo, image_server):
    """Root (a Nova rebuild), ephemeral disk (written back by the agent)
    and volume (replaced at its device, the old one kept) read the
    markers of the set; the undo brings back what they held before the
    restore; the server runs again after each."""
    server, guest, old_volume, made = image_server
    then = write_markers(guest)
    shown = create(openstack_cli, 'demo', server.id)
    made.append(shown['id'])
    since = write_markers(guest)

    began = time.monotonic()
    restored = json.loads(openstack_cli(
        'demo', 'server', 'snapshot', 'restore', shown['id'], '--wait',
        '-f', 'json').stdout)
    took = time.monotonic() - began
    made.append(restored['undo_set_id'])
    print('restore in place of an image-backed server (root, ephemeral, '
          'one volume): %.1f s' % took)
    assert restored['state'] == 'succeeded'
    assert demo.nova.servers.get(server.id).status == 'ACTIVE'
    assert marks(guest, demo, server.id) == dict.fromkeys(DEVICES, then)

    now = attachments(demo, server)
    assert sorted(now) == ['/dev/vdc']
    new = demo.cinder.volumes.get(now['/dev/vdc'])
    assert new.id != old_volume
    assert new.metadata[properties.RESTORED_FROM] == '%s /dev/vdc' % (
        shown['id'])
    assert new.metadata[properties.REPLACES] == old_volume
    assert new.metadata[properties.DELIVERED] == 'True'
    old = demo.cinder.volumes.get(old_volume)
    assert old.status == 'available'
    assert old.metadata[properties.REPLACED_BY] == restored['id']
    assert old.name.startswith('inplace-image data (replaced by ')

    safety = sets.get_set(demo, restored['undo_set_id'])
    assert safety.undo_of == restored['id']
    assert safety.server_id == server.id
    assert sorted(d.name for d in safety.drives) == [
        '/dev/vda', '/dev/vdb', '/dev/vdc']

    undone = json.loads(openstack_cli(
        'demo', 'server', 'snapshot', 'undo', restored['id'], '--wait', '-f',
        'json').stdout)
    made.append(undone['undo_set_id'])
    assert undone['state'] == 'succeeded'
    assert undone['set_id'] == restored['undo_set_id']
    assert demo.nova.servers.get(server.id).status == 'ACTIVE'
    assert marks(guest, demo, server.id) == dict.fromkeys(DEVICES, since)
    # The volume the restore made is replaced in turn, and kept.
    assert demo.cinder.volumes.get(new.id).metadata[
        properties.REPLACED_BY] == undone['id']


def test_a_volume_backed_server_restored_in_part_then_whole(
        openstack_cli, demo, admin):
    """Its data volume alone (the root keeps what it holds now), then
    every drive with the server shut off: the root volume re-imaged in
    place by Nova (the same volume), the server left shut off."""
    server = boot(openstack_cli, demo, 'inplace-volume', 'snap.tiny-noeph',
                  '--image', GUEST_IMAGE, '--boot-from-volume', '1')
    made = []
    try:
        attach_new_volume(demo, server, 'inplace-volume-data')
        guest = Guest(admin, server.id)
        mounted(guest, ['vda', 'vdb'])
        then = write_markers(guest)
        shown = create(openstack_cli, 'demo', server.id)
        made.append(shown['id'])
        since = write_markers(guest)
        before = attachments(demo, server)

        began = time.monotonic()
        restored = json.loads(openstack_cli(
            'demo', 'server', 'snapshot', 'restore', shown['id'], '--device',
            'vdb', '--wait', '-f', 'json').stdout)
        print('restore in place of a volume-backed server\'s data volume: '
              '%.1f s' % (time.monotonic() - began))
        made.append(restored['undo_set_id'])
        after = attachments(demo, server)
        assert after['/dev/vda'] == before['/dev/vda']
        assert after['/dev/vdb'] != before['/dev/vdb']
        assert demo.nova.servers.get(server.id).status == 'ACTIVE'
        assert marks(guest, demo, server.id) == {'/dev/vda': since,
                                                 '/dev/vdb': then}

        openstack_cli('demo', 'server', 'stop', server.id)
        wait_for('server stopped', lambda: demo.nova.servers.get(
            server.id).status == 'SHUTOFF')
        began = time.monotonic()
        whole = json.loads(openstack_cli(
            'demo', 'server', 'snapshot', 'restore', shown['id'], '--wait',
            '-f', 'json').stdout)
        print('restore in place of every drive of a volume-backed server '
              '(shut off): %.1f s' % (time.monotonic() - began))
        made.append(whole['undo_set_id'])
        assert demo.nova.servers.get(server.id).status == 'SHUTOFF'
        assert attachments(demo, server)['/dev/vda'] == before['/dev/vda']
        openstack_cli('demo', 'server', 'start', server.id)
        wait_for('server started', lambda: demo.nova.servers.get(
            server.id).status == 'ACTIVE')
        assert marks(guest, demo, server.id) == {'/dev/vda': then,
                                                 '/dev/vdb': then}
        # No temporary volume or image is left: the new volume at vdb and
        # the safety set are all that carry the run's tag.
        volumes = run_resources(demo, admin, whole['id'])[0]
        assert [v.id for v in volumes] == [
            attachments(demo, server)['/dev/vdb']]
        assert [i['id'] for i in run_resources(demo, admin, whole['id'])[2]
                ] == [whole['undo_set_id']]
    finally:
        tear_down(demo, server.id, made)


def _restore_with_fault(demo, set_id, fault_at, fault):
    """The orchestration core's restore in place, ``fault()`` made when
    the step ``fault_at`` starts; the RestoreFailed it ends with, and the
    run's id."""
    run_id = 'fault-%d' % time.time()

    def progress(event):
        if event.step == fault_at and event.state == events.STARTED:
            fault()
    with pytest.raises(errors.RestoreFailed) as failed:
        inplace.restore_in_place(
            demo, set_id, run_id=run_id, progress=progress,
            agent_locator=agent.AgentLocator(AGENT_URL))
    return failed.value, run_id


def test_an_attach_refused_mid_restore_puts_the_server_back(
        openstack_cli, demo, admin, image_server):
    """Cinder refuses the new volume once the old one is detached (its
    state set to error behind the restore's back): the old volume goes
    back at its device, the server runs again with what it held, and
    nothing the restore made is left, its safety set included."""
    server, guest, old_volume, made = image_server
    then = write_markers(guest)
    shown = create(openstack_cli, 'demo', server.id, '--device', 'vdc')
    made.append(shown['id'])
    since = write_markers(guest)

    def refuse_the_new_volume():
        (new,) = [v for v in demo.cinder.volumes.list()
                  if (v.metadata or {}).get(properties.REPLACES)
                  == old_volume]
        admin.cinder.volumes.reset_state(new.id, 'error')
    failed, run_id = _restore_with_fault(demo, shown['id'], events.ATTACH,
                                         refuse_the_new_volume)
    assert failed.rollback_failures == []
    assert attachments(demo, server) == {'/dev/vdc': old_volume}
    assert demo.nova.servers.get(server.id).status == 'ACTIVE'
    assert marks(guest, demo, server.id)['/dev/vdc'] == since
    assert then != since
    assert run_resources(demo, admin, run_id) == ([], [], [])
    assert [s.id for s in sets.list_sets(demo, server_id=server.id)] == [
        shown['id']]


def test_a_rebuild_failing_mid_restore_puts_the_server_back(
        openstack_cli, demo, admin, image_server):
    """Nova's rebuild fails on the compute node (the set's root image has
    lost its data in Glance's store): the root and the ephemeral disk
    come back from the safety set, the volume at its device, the server
    runs again, and nothing the restore made is left."""
    server, guest, old_volume, made = image_server
    write_markers(guest)
    shown = create(openstack_cli, 'demo', server.id)
    made.append(shown['id'])
    since = write_markers(guest)
    stored = os.path.join(GLANCE_STORE, shown['id'])
    hidden = stored + '.hidden'

    failed, run_id = _restore_with_fault(
        demo, shown['id'], events.REBUILD, lambda: os.rename(stored, hidden))
    os.rename(hidden, stored)
    assert 'Nova could not rebuild the root disk' in str(failed)
    assert failed.rollback_failures == []
    assert attachments(demo, server) == {'/dev/vdc': old_volume}
    assert demo.nova.servers.get(server.id).status == 'ACTIVE'
    assert marks(guest, demo, server.id) == dict.fromkeys(DEVICES, since)
    assert run_resources(demo, admin, run_id) == ([], [], [])
    assert [s.id for s in sets.list_sets(demo, server_id=server.id)] == [
        shown['id']]
