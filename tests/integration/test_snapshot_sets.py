"""Snapshot sets on the mini-cloud: the CLI, as the demo user, on real
servers running the test guest."""

import json
import uuid

import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import sets
from tests.integration.conftest import Guest
from tests.integration.conftest import delete_server_and_its_volumes
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for


def create(openstack_cli, cloud, server, *args):
    result = openstack_cli(cloud, 'server', 'snapshot', 'create', server,
                           '--wait', '-f', 'json', *args)
    return json.loads(result.stdout)


def mappings(clients, set_id):
    image = clients.glance.images.get(set_id)
    return image, json.loads(image['block_device_mapping'])


def attachments(clients, server):
    return {a.device: a.volumeId for a in
            clients.nova.volumes.get_server_volumes(server.id)}


def project_resources(admin, project_id):
    images = {i.id for i in admin.glance.images.list(
        filters={'owner': project_id})}
    snapshots = {s.id for s in admin.cinder.volume_snapshots.list(
        search_opts={'all_tenants': 1, 'project_id': project_id})}
    return images, snapshots


def write_markers(guest):
    """A new marker written to every drive of the guest, synced."""
    guest.wait_until_answering()
    marker = uuid.uuid4().hex
    guest.shell('for d in /mnt/vd*; do echo %s-${d##*/} > $d/marker; done; '
                'sync' % marker)
    return marker


def read_markers(guest, marker, count):
    """The markers a guest booted from a set reads, once ``count`` are."""
    guest.wait_until_answering()
    return wait_for('the markers in the new guest', lambda: (
        lambda out: out if out.count(marker) == count else None)(
            guest.shell('cat /mnt/*/marker 2>/dev/null; true')),
        timeout_s=60)


def boot_from_set(openstack_cli, demo, set_id, flavor, name):
    openstack_cli('demo', '--os-compute-api-version', '2.79', 'server',
                  'create', '--flavor', flavor, '--image', set_id, '--nic',
                  'none', '--wait', name)
    return server_by_name(demo, name)


@pytest.fixture
def cleanup(demo):
    made = []
    yield made
    for set_id in made:
        try:
            sets.delete_set(demo, set_id)
        except errors.SetNotFound:
            pass  # the test deleted it itself


def test_all_drives_of_the_image_backed_server(openstack_cli, demo,
                                               cleanup):
    """In-process with no agent: the root through Nova's createImage
    inside Nova's pause, the ephemeral disk left out with the reason."""
    server = server_by_name(demo, 'demo-image')
    shown = create(openstack_cli, 'demo', 'demo-image', '--in-process')
    cleanup.append(shown['id'])

    assert shown['status'] == 'available'
    assert shown['consistency'] == 'crash'
    assert '/dev/vdb: an ephemeral disk' in shown['not_captured']
    image, bdm = mappings(demo, shown['id'])
    volumes = attachments(demo, server)
    assert sorted(m['device_name'] for m in bdm) == sorted(volumes)
    for mapping in bdm:
        snapshot = demo.cinder.volume_snapshots.get(mapping['snapshot_id'])
        assert snapshot.volume_id == volumes[mapping['device_name']]
        assert snapshot.status == 'available'
        assert snapshot.metadata['snapshot_set_run'] == image[
            properties.RUN]
        assert (mapping['source_type'], mapping['destination_type'],
                mapping['boot_index'], mapping['volume_size']) == (
            'snapshot', 'volume', None, 1)
    assert image['status'] == 'active' and image['size'] > 0
    assert image['instance_uuid'] == server.id
    assert image['bdm_v2'] == 'True'
    assert image['image_type'] == 'snapshot'


def test_a_subset_of_the_volume_backed_server(openstack_cli, demo, cleanup):
    server = server_by_name(demo, 'demo-volume')
    volumes = attachments(demo, server)
    data_device = max(volumes)
    shown = create(openstack_cli, 'demo', 'demo-volume', '--device',
                   data_device.removeprefix('/dev/'))
    cleanup.append(shown['id'])
    image, bdm = mappings(demo, shown['id'])
    assert [(m['device_name'], m['boot_index']) for m in bdm] == [
        (data_device, None)]
    assert shown['bootable'] is False
    assert image['size'] == 0


def test_booting_the_set_recreates_every_volume_with_its_data(
        openstack_cli, demo, admin, cleanup):
    server = server_by_name(demo, 'demo-volume')
    marker = write_markers(Guest(admin, server.id))

    shown = create(openstack_cli, 'demo', 'demo-volume', '--name',
                   'boot-test', '--consistency', 'crash')
    cleanup.append(shown['id'])
    _, bdm = mappings(demo, shown['id'])
    assert sorted((m['device_name'], m['boot_index']) for m in bdm) == [
        ('/dev/vda', 0), ('/dev/vdb', None)]

    clone = boot_from_set(openstack_cli, demo, shown['id'],
                          'snap.tiny-noeph', 'from-set')
    try:
        clone_volumes = attachments(demo, clone)
        assert sorted(clone_volumes) == ['/dev/vda', '/dev/vdb']
        by_snapshot = {m['snapshot_id']: m['device_name'] for m in bdm}
        for device, volume_id in clone_volumes.items():
            volume = demo.cinder.volumes.get(volume_id)
            assert by_snapshot[volume.snapshot_id] == device
        seen = read_markers(Guest(admin, clone.id), marker, 2)
        assert sorted(seen.split()) == ['%s-vda' % marker,
                                        '%s-vdb' % marker]
    finally:
        delete_server_and_its_volumes(demo, clone.id)


def test_delete_leaves_no_snapshot_or_image(openstack_cli, demo, admin):
    before = project_resources(admin, demo.project_id)
    shown = create(openstack_cli, 'demo', 'demo-image')
    snapshot_ids = sets.get_set(demo, shown['id']).snapshot_ids
    assert len(snapshot_ids) == 2
    openstack_cli('demo', 'server', 'snapshot', 'delete', shown['id'])
    wait_for('the set to be gone', lambda: project_resources(
        admin, demo.project_id) == before, timeout_s=120)


def test_unknown_devices_are_refused_and_nothing_is_created(
        openstack_cli, demo, admin):
    before = project_resources(admin, demo.project_id)
    result = openstack_cli('demo', 'server', 'snapshot', 'create',
                           'demo-image', '--device', 'vdz', check=False)
    assert result.returncode != 0
    assert 'Unknown device(s) /dev/vdz' in result.stderr
    assert project_resources(admin, demo.project_id) == before
    assert demo.nova.servers.get(
        server_by_name(demo, 'demo-image').id).status == 'ACTIVE'


def test_another_projects_server_is_refused_and_nothing_is_created(
        openstack_cli, demo, demo2, admin):
    server = server_by_name(demo, 'demo-image')
    before = (project_resources(admin, demo.project_id),
              project_resources(admin, demo2.project_id))
    result = openstack_cli('demo2', 'server', 'snapshot', 'create',
                           server.id, check=False)
    assert result.returncode != 0
    assert 'No server' in result.stderr
    assert (project_resources(admin, demo.project_id),
            project_resources(admin, demo2.project_id)) == before
    assert demo.nova.servers.get(server.id).status == 'ACTIVE'


def test_volume_backed_set_matches_novas_own_create_image(
        openstack_cli, demo, cleanup):
    server = server_by_name(demo, 'demo-volume')
    nova_image_id = str(demo.nova.servers.create_image(server.id,
                                                       'nova-own'))
    try:
        nova_image = wait_for('Nova image', lambda: (
            lambda i: i if i['status'] == 'active' else None)(
                demo.glance.images.get(nova_image_id)))
        nova_bdm = json.loads(nova_image['block_device_mapping'])
        wait_for('Nova to release the server', lambda: not demo.nova.servers
                 .get(server.id).to_dict()['OS-EXT-STS:task_state'])
        shown = create(openstack_cli, 'demo', 'demo-volume')
        cleanup.append(shown['id'])
        ours_image, ours_bdm = mappings(demo, shown['id'])

        by_device = {m['device_name']: m for m in nova_bdm}
        assert sorted(by_device) == sorted(m['device_name']
                                           for m in ours_bdm)
        for mapping in ours_bdm:
            theirs = by_device[mapping['device_name']]
            assert sorted(mapping) == sorted(theirs)
            for field in theirs:
                if field != 'snapshot_id':
                    assert mapping[field] == theirs[field], (
                        mapping['device_name'], field)
        for key in ('bdm_v2', 'root_device_name'):
            assert ours_image[key] == nova_image[key], key
    finally:
        image = demo.glance.images.get(nova_image_id)
        for mapping in json.loads(image['block_device_mapping']):
            demo.cinder.volume_snapshots.delete(mapping['snapshot_id'])
        demo.glance.images.delete(nova_image_id)


def freezes_logged_since(clients, server_id, since):
    """Freezes the guest's qemu-ga logged on its console after ``since``,
    in the guest's own clock (a TCG guest's clock lags the host's)."""
    found = 0
    for line in clients.nova.servers.get_console_output(
            server_id).splitlines():
        stamp, _, message = line.partition(':')
        try:
            logged_at = float(stamp)
        except ValueError:
            continue
        if logged_at >= since and 'guest-fsfreeze-freeze' in message:
            found += 1
    return found


@pytest.mark.parametrize('name, how', [
    ('demo-volume', []),
    ('demo-image', ['--in-process', '--agent-url', 'http://127.0.0.1:9797'])])
def test_application_consistency_through_the_agent(openstack_cli, demo,
                                                   admin, cleanup, name,
                                                   how):
    """Through the service (its worker finds the agent), or in-process with
    the agent's URL given."""
    server = server_by_name(demo, name)
    guest = Guest(admin, server.id)
    guest.wait_until_answering()
    started = guest.command('guest-get-time') / 1e9
    shown = create(openstack_cli, 'demo', name, '--consistency',
                   'application', *how)
    cleanup.append(shown['id'])
    assert shown['consistency'] == 'application'
    assert shown['status'] == 'available'
    # The guest's own agent logged the freeze (qemu-ga -v on its console).
    assert freezes_logged_since(demo, server.id, started) >= 1
    assert server_by_name(demo, name).status == 'ACTIVE'


def test_the_agent_copies_root_and_ephemeral_in_the_freeze_and_it_boots(
        openstack_cli, demo, admin, cleanup):
    server = server_by_name(demo, 'demo-image')
    marker = write_markers(Guest(admin, server.id))
    shown = create(openstack_cli, 'demo', 'demo-image', '--consistency',
                   'application')
    cleanup.append(shown['id'])
    snapshot_set = sets.get_set(demo, shown['id'])
    by = {d.name: d for d in snapshot_set.drives}
    # Every drive, root and ephemeral included, inside one freeze.
    assert {n: d.captured_by for n, d in by.items()} == {
        '/dev/vda': 'agent', '/dev/vdb': 'agent', '/dev/vdc': 'cinder',
        '/dev/vdd': 'cinder'}
    assert snapshot_set.consistency == 'application'
    assert all(d.shared_instant for d in by.values())
    assert snapshot_set.excluded == []
    ephemeral = demo.glance.images.get(by['/dev/vdb'].image_id)
    assert (ephemeral['status'], ephemeral['disk_format']) == (
        'active', 'qcow2')

    clone = boot_from_set(openstack_cli, demo, shown['id'], 'snap.tiny',
                          'from-agent-set')
    try:
        seen = read_markers(Guest(admin, clone.id), marker, 3)
        # The root from the agent's copy, the volumes from their snapshots
        # (the flavor's ephemeral disk starts blank, as Nova makes it).
        assert sorted(seen.split()) == ['%s-%s' % (marker, d) for d in
                                        ('vda', 'vdc', 'vdd')]
    finally:
        delete_server_and_its_volumes(demo, clone.id)
