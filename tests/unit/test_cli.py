"""The OpenStackClient commands with --in-process, on the in-memory cloud
(through the REST API: tests/restapi/test_cli_through_api.py)."""

import os
import subprocess
import sys
import types

from osc_lib import exceptions
import pytest

from snapshot_dashboard.cli import plugin
from snapshot_dashboard.cli import snapshot_sets
from tests.unit import fakes


@pytest.fixture
def cloud():
    return fakes.FakeCloud(snapshot_ticks=1)


@pytest.fixture(autouse=True)
def cloud_clock(monkeypatch, cloud):
    monkeypatch.setattr(snapshot_sets._Following, 'clock',
                        fakes.FakeClock(cloud))


def invoke(cloud, command_class, *argv):
    app = types.SimpleNamespace(
        client_manager=types.SimpleNamespace(
            snapshot_sets=plugin.ClientSet(cloud, service=None)),
        stdout=sys.stdout, stderr=sys.stderr, options=None)
    command = command_class(app, None)
    parsed = command.get_parser('openstack').parse_args(
        ['--in-process', *argv])
    return command.take_action(parsed)


def test_create_prints_set_id_and_consistency(cloud):
    server = cloud.add_server(volumes=[('/dev/vdb', 1)])
    names, values = invoke(cloud, snapshot_sets.CreateSnapshotSet, server,
                           '--device', 'vda', '--device', '/dev/vdb',
                           '--name', 'nightly', '--consistency', 'crash',
                           '--wait')
    shown = dict(zip(names, values, strict=True))
    assert shown['id'] in cloud.images
    assert shown['consistency'] == 'crash'
    assert shown['status'] == 'available'
    assert shown['name'] == 'nightly'
    assert shown['drives'].splitlines()[1].startswith('/dev/vdb volume 1 GB')


def test_create_with_unknown_device_is_a_clear_command_error(cloud):
    server = cloud.add_server()
    with pytest.raises(exceptions.CommandError) as raised:
        invoke(cloud, snapshot_sets.CreateSnapshotSet, server, '--device',
               'vdq')
    assert 'Unknown device(s) /dev/vdq' in str(raised.value)
    assert cloud.images == {}


def test_list_show_delete(cloud):
    server = cloud.add_server(volumes=[('/dev/vdb', 1)])
    names, values = invoke(cloud, snapshot_sets.CreateSnapshotSet, server,
                           '--wait')
    set_id = dict(zip(names, values, strict=True))['id']
    columns, rows = invoke(cloud, snapshot_sets.ListSnapshotSet, '--server',
                           server)
    assert columns == snapshot_sets.LIST_COLUMNS
    assert [r[0] for r in rows] == [set_id]
    names, values = invoke(cloud, snapshot_sets.ShowSnapshotSet, set_id)
    assert dict(zip(names, values, strict=True))['id'] == set_id
    invoke(cloud, snapshot_sets.DeleteSnapshotSet, set_id)
    assert cloud.images == {} and cloud.snapshots == {}


def test_delete_of_an_unknown_set_fails_and_says_how_many(cloud):
    with pytest.raises(exceptions.CommandError) as raised:
        invoke(cloud, snapshot_sets.DeleteSnapshotSet, 'no-such-set')
    assert '1 of 1 snapshot sets failed' in str(raised.value)


def test_openstack_help_lists_the_set_and_schedule_commands():
    openstack = os.path.join(os.path.dirname(sys.executable), 'openstack')
    result = subprocess.run([openstack, 'server', 'snapshot', '--help'],
                            capture_output=True, text=True, timeout=120,
                            check=False)
    commands = [line.strip() for line in result.stdout.splitlines()
                if line.strip().startswith('server snapshot ')]
    assert commands == [
        'server snapshot create', 'server snapshot delete',
        'server snapshot list', 'server snapshot restore',
        'server snapshot schedule create',
        'server snapshot schedule delete', 'server snapshot schedule list',
        'server snapshot schedule set', 'server snapshot schedule show',
        'server snapshot show', 'server snapshot undo']
