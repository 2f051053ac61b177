"""Recovering a run whose process died: its window closed, what it made
(and only that) deleted."""

from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import recovery
from tests.unit import fakes


def left_by_a_dead_run(cloud, server, run_id):
    """What a run killed inside its window leaves: the server paused, a
    volume snapshot and an image tagged with the run."""
    cloud.nova.servers.pause(server)
    cloud.tick()
    volume = cloud.attachments[server][0]['volumeId']
    snapshot = cloud.cinder.volume_snapshots.create(
        volume, force=True, metadata={properties.RUN: run_id})
    image = cloud.glance.images.create(**{properties.RUN: run_id})
    cloud.tick()
    cloud.tick()
    return snapshot.id, image['id']


def test_a_nova_pause_left_open_is_undone():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=[('/dev/vdb', 1)])
    left_by_a_dead_run(cloud, server, 'run-dead')
    assert cloud.server_status(server) == 'PAUSED'
    done = recovery.close_window(cloud, server, {'kind': 'NovaPauseWindow'},
                                 clock=fakes.FakeClock(cloud))
    assert done == (True, 'unpaused')
    assert cloud.server_status(server) == 'ACTIVE'


def test_a_server_not_paused_is_left_alone():
    cloud = fakes.FakeCloud()
    server = cloud.add_server()
    assert recovery.close_window(cloud, server,
                                 {'kind': 'NovaPauseWindow'}) == (
                                     True, 'not paused')
    assert cloud.pause_calls == []


def test_only_what_the_run_made_is_deleted():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=[('/dev/vdb', 1)])
    snapshot, image = left_by_a_dead_run(cloud, server, 'run-dead')
    cloud.nova.servers.unpause(server)
    cloud.tick()
    other_snapshot, other_image = left_by_a_dead_run(cloud, server,
                                                     'run-alive')
    deleted, failures = recovery.remove_leftovers(cloud, 'run-dead')
    assert sorted(deleted) == sorted(['volume snapshot %s' % snapshot,
                                      'image %s' % image])
    assert failures == []
    assert set(cloud.snapshots) == {other_snapshot}
    assert set(cloud.images) == {other_image}


def test_an_unpause_nova_refuses_is_left_to_be_retried():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=[('/dev/vdb', 1)])
    left_by_a_dead_run(cloud, server, 'run-dead')
    cloud.fail_at.add('nova.unpause')
    done, text = recovery.close_window(
        cloud, server, {'kind': 'NovaPauseWindow'},
        clock=fakes.FakeClock(cloud))
    assert (done, cloud.server_status(server)) == (False, 'PAUSED')
    assert 'unpause' in text
    cloud.fail_at.clear()
    assert recovery.close_window(cloud, server, {'kind': 'NovaPauseWindow'},
                                 clock=fakes.FakeClock(cloud))[0]
    assert cloud.server_status(server) == 'ACTIVE'
