"""Restoring a set's drives as new volumes, against in-memory Nova, Cinder
and Glance: what is made, where it is attached, and that a failure leaves
nothing made and touches nothing of the user's."""

from keystoneauth1 import exceptions as ks_exceptions
import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import restore
from snapshot_dashboard.orchestration import run
from tests.unit import fakes


@pytest.fixture
def cloud():
    return fakes.FakeCloud()


@pytest.fixture
def taken(cloud):
    """An image-backed server with an ephemeral disk and a volume, and an
    available set of all three drives (the ephemeral through the agent)."""
    server = cloud.add_server(ephemeral_gb=1, volumes=[('/dev/vdc', 2)])
    agent = fakes.FakeAgent(cloud, copies=True)
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', wait=True,
        clock=fakes.FakeClock(cloud), agent_locator=fakes.FakeAgents(agent))
    return server, snapshot_set


def restore_(cloud, set_id, seen=None, **kwargs):
    return restore.restore_as_volumes(
        cloud, set_id, clock=fakes.FakeClock(cloud),
        progress=(seen if seen is not None else []).append, **kwargs)


def new_volumes(cloud, before):
    return {vid: v for vid, v in cloud.volumes.items() if vid not in before}


def test_every_drive_comes_back_as_a_new_volume_from_what_the_set_holds(
        cloud, taken):
    _, snapshot_set = taken
    drives = {d.name: d for d in snapshot_set.drives}
    before = dict(cloud.volumes)
    restored = restore_(cloud, snapshot_set.id, run_id='run-r')
    made = new_volumes(cloud, before)
    assert {r.device for r in restored} == {'/dev/vda', '/dev/vdb',
                                            '/dev/vdc'}
    by_device = {r.device: made[r.volume_id] for r in restored}
    assert by_device['/dev/vdc']['snapshot_id'] == drives[
        '/dev/vdc'].snapshot_id
    assert by_device['/dev/vda']['image_id'] == snapshot_set.id
    assert by_device['/dev/vdb']['image_id'] == drives['/dev/vdb'].image_id
    for device, volume in by_device.items():
        assert volume['status'] == 'available'
        assert volume['size'] == drives[device].size_gb
        assert volume['metadata'] == {
            properties.RUN: 'run-r', properties.DELIVERED: 'True',
            properties.RESTORED_FROM: '%s %s' % (snapshot_set.id, device)}
        assert device in volume['name']
    # The user's volumes and the set are as they were.
    assert {vid: v['status'] for vid, v in before.items()} == {
        vid: cloud.volumes[vid]['status'] for vid in before}
    assert set(snapshot_set.snapshot_ids) <= set(cloud.snapshots)


def test_chosen_drives_are_attached_to_the_server_named(cloud, taken):
    _, snapshot_set = taken
    other = cloud.add_server(name='other', volumes=[('/dev/vdb', 1)])
    seen = []
    restored = restore_(cloud, snapshot_set.id, seen, devices=['/dev/vdc'],
                        attach_to=other)
    (volume,) = restored
    assert (volume.device, volume.attached_as) == ('/dev/vdc', '/dev/vdc')
    assert cloud.volumes[volume.volume_id]['status'] == 'in-use'
    assert [(e.step, e.state, e.device) for e in seen
            if e.step in (events.RESTORE, events.ATTACH)] == [
        (events.RESTORE, events.STARTED, '/dev/vdc'),
        (events.RESTORE, events.DONE, '/dev/vdc'),
        (events.ATTACH, events.STARTED, '/dev/vdc'),
        (events.ATTACH, events.DONE, '/dev/vdc')]


@pytest.mark.parametrize('devices, refused', [
    (['/dev/vdz'], errors.UnknownDevices), ([], errors.NothingSelected)])
def test_a_bad_choice_of_drives_makes_nothing(cloud, taken, devices,
                                              refused):
    _, snapshot_set = taken
    before = set(cloud.volumes)
    with pytest.raises(refused):
        restore_(cloud, snapshot_set.id, devices=devices)
    assert set(cloud.volumes) == before


def test_another_projects_set_or_server_is_not_found(cloud, taken):
    _, snapshot_set = taken
    theirs = cloud.add_server(name='theirs', project_id=fakes.OTHER_PROJECT)
    before = set(cloud.volumes)
    with pytest.raises(errors.ServerNotFound):
        restore_(cloud, snapshot_set.id, attach_to=theirs)
    cloud.images[snapshot_set.id]['owner'] = fakes.OTHER_PROJECT
    with pytest.raises(errors.SetNotFound):
        restore_(cloud, snapshot_set.id)
    assert set(cloud.volumes) == before


def test_a_set_not_available_or_a_busy_server_is_refused(cloud, taken):
    _, snapshot_set = taken
    busy = cloud.add_server(name='busy')
    cloud.servers[busy]['OS-EXT-STS:task_state'] = 'rebooting'
    with pytest.raises(errors.ServerNotAttachable):
        restore_(cloud, snapshot_set.id, attach_to=busy)
    cloud.images[snapshot_set.id]['status'] = 'queued'
    with pytest.raises(errors.SetNotUsable):
        restore_(cloud, snapshot_set.id)


def test_not_enough_volume_quota_makes_nothing(cloud, taken):
    _, snapshot_set = taken
    cloud.limits.update(maxTotalVolumes=4, totalVolumesUsed=3)
    before = set(cloud.volumes)
    with pytest.raises(errors.QuotaExceeded) as raised:
        restore_(cloud, snapshot_set.id)
    assert 'volumes: 3 needed, 3 of 4 in use' in str(raised.value)
    assert set(cloud.volumes) == before


@pytest.mark.parametrize('fault', ['nova.attach', 'cinder.volume_status',
                                   'cinder.volume_create_answer'])
def test_a_failure_removes_every_volume_it_made_and_nothing_else(
        cloud, taken, fault):
    _, snapshot_set = taken
    other = cloud.add_server(name='other', volumes=[('/dev/vdb', 1)])
    before = {vid: dict(v) for vid, v in cloud.volumes.items()}
    attachments = list(cloud.attachments[other])
    cloud.fail_at.add(fault)
    seen = []
    with pytest.raises(errors.RestoreFailed) as raised:
        restore_(cloud, snapshot_set.id, seen, attach_to=other)
    assert raised.value.rollback_failures == []
    assert set(cloud.volumes) == set(before)
    assert cloud.attachments[other] == attachments
    assert [e.state for e in seen if e.step == events.ROLLBACK] == [
        events.STARTED, events.DONE]


def test_a_volume_that_is_not_the_runs_is_never_deleted(cloud, taken):
    # An undo that finds its volume by tag keeps any volume whose run tag
    # is not its own.
    _, snapshot_set = taken
    mine = cloud.add_volume('mine', 1)
    cloud.volumes[mine]['metadata'] = {
        properties.RESTORED_FROM: '%s /dev/vda' % snapshot_set.id}
    cloud.fail_at.add('cinder.volume_create_answer')
    with pytest.raises(errors.RestoreFailed):
        restore_(cloud, snapshot_set.id, run_id='run-r')
    assert mine in cloud.volumes


def test_a_long_set_name_still_names_the_volume_within_cinders_limit(
        cloud, taken):
    _, snapshot_set = taken
    cloud.images[snapshot_set.id]['name'] = 'n' * 255
    (volume,) = restore_(cloud, snapshot_set.id, devices=['/dev/vdc'])
    assert len(cloud.volumes[volume.volume_id]['name']) == 255


def test_a_mark_refused_keeps_what_was_delivered_and_removes_the_rest(
        cloud, taken):
    _, snapshot_set = taken
    original = cloud.cinder.volumes.set_metadata
    marked = []

    def set_metadata(volume_id, metadata):
        if marked:
            raise errors.RestoreFailed('refused')  # not worth retrying
        marked.append(volume_id)
        original(volume_id, metadata)
    cloud.cinder.volumes.set_metadata = set_metadata
    before = set(cloud.volumes)
    with pytest.raises(errors.RestoreFailed):
        restore_(cloud, snapshot_set.id, devices=['/dev/vdb', '/dev/vdc'])
    # The delivered one is the user's; the other was removed.
    assert set(cloud.volumes) - before == set(marked)


def test_a_set_image_with_unreadable_properties_is_not_a_set(cloud, taken):
    _, snapshot_set = taken
    cloud.images[snapshot_set.id][properties.DEVICES] = '[1]'
    with pytest.raises(errors.SetNotFound):
        restore_(cloud, snapshot_set.id)


def test_recovery_undoes_an_undelivered_restore_and_keeps_a_delivered_one(
        cloud, taken):
    _, snapshot_set = taken
    other = cloud.add_server(name='other')
    before = set(cloud.volumes)
    restored = restore_(cloud, snapshot_set.id, attach_to=other,
                        run_id='run-r')
    clock = fakes.FakeClock(cloud)
    # Delivered: kept, and every drive reported.
    drives, deleted, failures = restore.recover(
        cloud, 'run-r', snapshot_set.id, other, clock)
    assert drives == {r.device: 'attached' for r in restored}
    assert (deleted, failures) == ([], [])
    # Not delivered yet (the worker died before the marks): removed,
    # detached first; a volume someone attached elsewhere is left.
    for volume in restored:
        del cloud.volumes[volume.volume_id]['metadata'][properties.DELIVERED]
    elsewhere = cloud.add_server(name='elsewhere')
    moved = restored[0].volume_id
    cloud.cinder.volumes.set_metadata(moved, {})
    cloud.nova.volumes.delete_server_volume(other, moved)
    cloud.nova.volumes.create_server_volume(elsewhere, moved)
    drives, deleted, failures = restore.recover(
        cloud, 'run-r', snapshot_set.id, other, clock)
    assert drives is None
    assert failures == ['volume %s: attached to %s' % (moved, elsewhere)]
    assert set(cloud.volumes) - before == {moved}
    assert len(deleted) == len(restored) - 1
    assert cloud.attachments[other] == []


def test_a_poll_cinder_dropped_is_read_again(cloud, taken):
    # A keep-alive connection Cinder's API closed as it was reused.
    _, snapshot_set = taken
    original = cloud.cinder.volumes.get
    dropped = []

    def get(volume_id):
        if not dropped:
            dropped.append(volume_id)
            raise ks_exceptions.ConnectFailure(
                'Unable to establish connection: Remote end closed '
                'connection without response')
        return original(volume_id)
    cloud.cinder.volumes.get = get
    (volume,) = restore_(cloud, snapshot_set.id, devices=['/dev/vdc'])
    assert dropped and volume.volume_id in cloud.volumes
