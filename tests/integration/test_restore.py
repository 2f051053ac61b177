"""Restoring drives of a set on the mini-cloud, through the CLI, the REST
API and the worker, as the demo user, on real guests."""

import json

from snapshot_dashboard.orchestration import properties
from tests.integration.conftest import Guest
from tests.integration.conftest import delete_server_and_its_volumes
from tests.integration.conftest import server_by_name
from tests.integration.test_snapshot_sets import create
from tests.integration.test_snapshot_sets import read_markers
from tests.integration.test_snapshot_sets import write_markers

GUEST_IMAGE = 'snapguest'
FLAVOR = 'snap.tiny-noeph'


def test_drives_come_back_as_new_volumes_on_another_server(
        openstack_cli, demo, admin):
    """The ephemeral disk (the agent's copy, an image) and a volume (its
    Cinder snapshot) of demo-image, restored as new volumes attached to a
    new server, hold what the drives held when the set was taken; the
    server the set is of keeps what it wrote since."""
    server = server_by_name(demo, 'demo-image')
    guest = Guest(admin, server.id)
    then = write_markers(guest)
    shown = create(openstack_cli, 'demo', 'demo-image', '--device', 'vdb',
                   '--device', 'vdc', '--consistency', 'crash')
    target = None
    try:
        assert [d.split()[0] for d in shown['drives'].splitlines()] == [
            '/dev/vdb', '/dev/vdc']
        since = write_markers(guest)
        openstack_cli('demo', '--os-compute-api-version', '2.79', 'server',
                      'create', '--flavor', FLAVOR, '--image', GUEST_IMAGE,
                      '--nic', 'none', '--wait', 'restore-target')
        target = server_by_name(demo, 'restore-target')
        restored = json.loads(openstack_cli(
            'demo', 'server', 'snapshot', 'restore', shown['id'],
            '--as-new-volumes', '--device', 'vdb', '--device', 'vdc',
            '--attach-to', 'restore-target', '--wait', '-f',
            'json').stdout)
        lines = restored['volumes'].splitlines()
        assert [line.split()[0] for line in lines] == ['/dev/vdb',
                                                       '/dev/vdc']
        assert all('attached to %s' % target.id in line for line in lines)

        seen = read_markers(Guest(admin, target.id), then, 2)
        assert sorted(seen.split()) == ['%s-vdb' % then, '%s-vdc' % then]
        assert since not in seen
        assert sorted(guest.shell('cat /mnt/vdb/marker /mnt/vdc/marker')
                      .split()) == ['%s-vdb' % since, '%s-vdc' % since]
        for line in lines:
            volume = demo.cinder.volumes.get(line.split()[1])
            assert volume.metadata[properties.RESTORED_FROM] == '%s %s' % (
                shown['id'], line.split()[0])
            assert volume.metadata[properties.DELIVERED] == 'True'
    finally:
        if target is not None:
            delete_server_and_its_volumes(demo, target.id)
        openstack_cli('demo', 'server', 'snapshot', 'delete', shown['id'])


def test_a_bad_restore_is_refused_and_makes_nothing(openstack_cli, demo):
    shown = create(openstack_cli, 'demo', 'demo-volume', '--device', 'vdb',
                   '--consistency', 'crash')
    try:
        volumes = {v.id for v in demo.cinder.volumes.list()}
        for args, words in [
                (['--device', 'vdz'], 'Unknown device(s) /dev/vdz'),
                (['--attach-to', '00000000-0000-4000-8000-000000000000'],
                 'No server')]:
            result = openstack_cli(
                'demo', 'server', 'snapshot', 'restore', shown['id'],
                '--as-new-volumes', *args, check=False)
            assert result.returncode == 1, result.stderr
            assert words in result.stderr
        result = openstack_cli('demo-reader', 'server', 'snapshot',
                               'restore', shown['id'], '--as-new-volumes',
                               check=False)
        assert result.returncode == 1
        assert 'set:restore' in result.stderr
        assert {v.id for v in demo.cinder.volumes.list()} == volumes
    finally:
        openstack_cli('demo', 'server', 'snapshot', 'delete', shown['id'])
