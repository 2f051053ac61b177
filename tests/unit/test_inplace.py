"""Restoring a server in place to one of its sets, against in-memory Nova,
Cinder, Glance and agent: the order of the changes, the refusals that
change nothing, and a failure at each change putting the server back as
it was with nothing of the restore left (its safety set kept only when
the server could not be put back)."""

import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from tests.unit import fakes


@pytest.fixture
def cloud():
    return fakes.FakeCloud()


@pytest.fixture
def agent(cloud):
    return fakes.FakeAgent(cloud, copies=True)


@pytest.fixture
def taken(cloud, agent):
    """An image-backed server with an ephemeral disk and a volume, and an
    available set of all three drives."""
    server = cloud.add_server(ephemeral_gb=1, volumes=[('/dev/vdc', 2)])
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', wait=True,
        clock=fakes.FakeClock(cloud), agent_locator=fakes.FakeAgents(agent))
    return server, snapshot_set


def restore_(cloud, agent, set_id, seen=None, **kwargs):
    return inplace.restore_in_place(
        cloud, set_id, clock=fakes.FakeClock(cloud),
        agent_locator=fakes.FakeAgents(agent) if agent else None,
        progress=(seen if seen is not None else []).append, **kwargs)


def attached(cloud, server):
    return {a['device']: a['volumeId'] for a in cloud.attachments[server]}


def snapshot(cloud):
    """What exists: volumes (status, attachments), snapshots, images."""
    return ({v: (d['status'], str(d['attachments']))
             for v, d in cloud.volumes.items()},
            set(cloud.snapshots), set(cloud.images))


def test_every_drive_is_replaced_in_place_after_a_safety_set(
        cloud, agent, taken):
    server, snapshot_set = taken
    drives = {d.name: d for d in snapshot_set.drives}
    old = attached(cloud, server)['/dev/vdc']
    seen = []
    safety = restore_(cloud, agent, snapshot_set.id, seen, run_id='run-1')

    steps = [(e.step, e.device) for e in seen if e.state == events.STARTED
             and e.step not in inplace.SAFETY_SET_STEPS]
    # The new volume first (it takes long), then the safety set right
    # before the stop.
    assert steps == [
        (events.PLAN, None), (events.RESTORE, '/dev/vdc'),
        (events.SAFETY_SET, None), (events.STOP, None),
        (events.DETACH, '/dev/vdc'), (events.ATTACH, '/dev/vdc'),
        (events.REBUILD, '/dev/vda'), (events.WRITE, '/dev/vdb'),
        (events.START, None)]
    # The safety set holds the three drives as they were, marked as the
    # run's undo.
    assert safety.undo_of == 'run-1'
    assert sorted(d.name for d in safety.drives) == [
        '/dev/vda', '/dev/vdb', '/dev/vdc']
    assert sets.get_set(cloud, safety.id).undo_of == 'run-1'

    new = attached(cloud, server)['/dev/vdc']
    assert new != old
    assert cloud.volumes[new]['snapshot_id'] == drives['/dev/vdc'].snapshot_id
    assert cloud.volumes[new]['metadata'] == {
        properties.RUN: 'run-1', properties.REPLACES: old,
        properties.DELIVERED: 'True',
        properties.RESTORED_FROM: '%s /dev/vdc' % snapshot_set.id}
    assert cloud.volumes[old]['status'] == 'available'
    assert cloud.volumes[old]['metadata'][properties.REPLACED_BY] == 'run-1'
    assert cloud.volumes[old]['name'].startswith('web-vdc (replaced by ')
    assert cloud.rebuilds == [(server, snapshot_set.id)]
    assert ('write', server, 'vdb', drives['/dev/vdb'].image_id) in \
        agent.calls
    assert cloud.server_status(server) == 'ACTIVE'


def test_a_shut_off_server_stays_shut_off(cloud, agent, taken):
    server, snapshot_set = taken
    cloud.servers[server]['status'] = 'SHUTOFF'
    restore_(cloud, agent, snapshot_set.id, devices=['vdc'])
    assert [call for call, _ in cloud.pause_calls] == []
    assert cloud.server_status(server) == 'SHUTOFF'


def test_a_root_rebuild_writes_back_the_ephemeral_disk_it_blanks(
        cloud, agent, taken):
    """The ephemeral disk is not restored: it is in the safety set, and
    written back from it after the rebuild."""
    server, snapshot_set = taken
    safety = restore_(cloud, agent, snapshot_set.id, devices=['vda'])
    safety_drives = {d.name: d for d in safety.drives}
    assert sorted(safety_drives) == ['/dev/vda', '/dev/vdb']
    writes = [c for c in agent.calls if c[0] == 'write']
    assert writes == [('write', server, 'vdb',
                       safety_drives['/dev/vdb'].image_id)]
    assert cloud.rebuilds == [(server, snapshot_set.id)]


@pytest.mark.parametrize('prepare, devices, words', [
    (lambda cloud, server: None, ['vdz'], 'Unknown device(s) /dev/vdz'),
    (lambda cloud, server: cloud.detach(server, '/dev/vdc'), ['vdc'],
     '/dev/vdc: the server has no drive there now: restore it as a new '
     'volume attached to the server'),
    (lambda cloud, server: cloud.servers[server].update(
        {'OS-EXT-STS:task_state': 'resize_prep'}), None, 'busy'),
])
def test_what_cannot_be_restored_is_refused_and_nothing_changes(
        cloud, agent, taken, prepare, devices, words):
    server, snapshot_set = taken
    prepare(cloud, server)
    before = snapshot(cloud)
    with pytest.raises(errors.SnapshotSetError) as refused:
        restore_(cloud, agent, snapshot_set.id, devices=devices)
    assert words in str(refused.value)
    assert snapshot(cloud) == before
    assert cloud.rebuilds == [] and not agent.calls[-1][0] == 'write'


@pytest.fixture
def volume_backed(cloud):
    server = cloud.add_server(image_backed=False, volumes=[('/dev/vdb', 1)])
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', wait=True,
        clock=fakes.FakeClock(cloud))
    return server, snapshot_set


def test_a_volume_backed_root_is_re_imaged_through_a_temporary_image(
        cloud, agent, volume_backed):
    """Cinder uploads a volume made from the root's snapshot; Nova's 2.93
    rebuild re-images the root volume from it; the temporary volume and
    image are gone after, the root volume is the same volume."""
    server, snapshot_set = volume_backed
    root = attached(cloud, server)['/dev/vda']
    volumes, images = set(cloud.volumes), set(cloud.images)
    safety = restore_(cloud, agent, snapshot_set.id, devices=['vda'],
                      run_id='run-v')
    ((source, image),) = cloud.uploads
    assert cloud.rebuilds == [(server, image)]
    snapshots = {d.name: d.snapshot_id for d in snapshot_set.drives}
    assert source not in cloud.volumes and image not in cloud.images
    assert attached(cloud, server)['/dev/vda'] == root
    assert set(cloud.volumes) == volumes
    assert set(cloud.images) == images | {safety.id}
    assert snapshots['/dev/vda']
    assert cloud.server_status(server) == 'ACTIVE'


def test_a_root_volume_needs_quota_for_its_temporary_volume(
        cloud, agent, volume_backed):
    _, snapshot_set = volume_backed
    used = len(cloud.volumes)
    cloud.limits.update(maxTotalVolumes=used, totalVolumesUsed=used)
    before = snapshot(cloud)
    with pytest.raises(errors.QuotaExceeded):
        restore_(cloud, agent, snapshot_set.id, devices=['vda'])
    assert snapshot(cloud) == before


def test_a_volume_backed_root_fails_back_from_the_safety_set(
        cloud, agent, volume_backed):
    server, snapshot_set = volume_backed
    before = snapshot(cloud)
    fail = _fail_once(cloud, 'nova.rebuild_fails', events.REBUILD)
    with pytest.raises(errors.RestoreFailed) as failed:
        inplace.restore_in_place(
            cloud, snapshot_set.id, devices=['vda'],
            clock=fakes.FakeClock(cloud),
            agent_locator=fakes.FakeAgents(agent), progress=fail)
    assert failed.value.rollback_failures == []
    # Re-imaged from the set, then back from the safety set: two
    # temporary images, both gone, as is the safety set.
    assert [image for _, image in cloud.rebuilds] == [
        image for _, image in cloud.uploads]
    assert len(cloud.uploads) == 2
    assert snapshot(cloud) == before
    assert cloud.server_status(server) == 'ACTIVE'


def test_a_volume_backed_root_is_refused_where_nova_cannot(
        cloud, agent, volume_backed):
    server, snapshot_set = volume_backed
    cloud.nova_max = '2.92'
    before = snapshot(cloud)
    with pytest.raises(errors.CannotRestoreInPlace) as refused:
        restore_(cloud, agent, snapshot_set.id)
    assert str(refused.value) == (
        'Cannot restore in place: /dev/vda: this cloud\'s Nova cannot '
        'rebuild a volume-backed server (API 2.93), so its root cannot be '
        'restored in place: launch the set as a new server, or restore '
        'this drive as a new volume.')
    assert snapshot(cloud) == before
    # Its data volume alone can be.
    data = attached(cloud, server)['/dev/vdb']
    restore_(cloud, agent, snapshot_set.id, devices=['vdb'])
    assert attached(cloud, server)['/dev/vdb'] not in (data, None)


def test_an_ephemeral_disk_without_the_agent_is_refused(cloud, agent,
                                                        taken):
    _, snapshot_set = taken
    before = snapshot(cloud)
    with pytest.raises(errors.CannotRestoreInPlace) as refused:
        restore_(cloud, None, snapshot_set.id, devices=['vdb'])
    assert 'compute-side agent, which cannot be reached' in str(
        refused.value)
    with pytest.raises(errors.CannotRestoreInPlace) as refused:
        restore_(cloud, None, snapshot_set.id, devices=['vda'])
    assert 'blanks the ephemeral disk /dev/vdb' in str(refused.value)
    assert snapshot(cloud) == before


def test_another_projects_set_is_not_found(cloud, agent, taken):
    _, snapshot_set = taken
    cloud.project_id = 'other-project'
    with pytest.raises(errors.SetNotFound):
        restore_(cloud, agent, snapshot_set.id)


def test_no_safety_set_no_change(cloud, agent, taken):
    server, snapshot_set = taken
    before = snapshot(cloud)
    cloud.fail_at.add('agent.capture')
    with pytest.raises(errors.RestoreFailed) as failed:
        restore_(cloud, agent, snapshot_set.id)
    assert 'The safety set (the restore\'s undo) could not be taken, so ' \
        'nothing was changed' in str(failed.value)
    assert snapshot(cloud) == before
    assert cloud.server_status(server) == 'ACTIVE'


def _fail_once(cloud, point, at_step):
    """``point`` fails from when ``at_step`` starts until the rollback."""
    def progress(event):
        if event.step == at_step and event.state == events.STARTED:
            cloud.fail_at.add(point)
        if event.step == events.ROLLBACK and event.state == events.STARTED:
            cloud.fail_at.discard(point)
    return progress


@pytest.mark.parametrize('point, at_step', [
    ('cinder.volume_status', events.RESTORE),
    ('nova.attach', events.ATTACH),
    ('nova.rebuild', events.REBUILD),
    ('nova.rebuild_fails', events.REBUILD),
    ('agent.write', events.WRITE),
])
def test_a_failure_at_any_change_puts_the_server_back(
        cloud, agent, taken, point, at_step):
    server, snapshot_set = taken
    before = snapshot(cloud)
    volumes = attached(cloud, server)
    seen = []
    fail = _fail_once(cloud, point, at_step)
    with pytest.raises(errors.RestoreFailed) as failed:
        inplace.restore_in_place(
            cloud, snapshot_set.id, clock=fakes.FakeClock(cloud),
            agent_locator=fakes.FakeAgents(agent), run_id='run-f',
            progress=lambda event: (seen.append(event), fail(event)))
    assert failed.value.rollback_failures == []
    assert attached(cloud, server) == volumes
    assert cloud.server_status(server) == 'ACTIVE'
    assert snapshot(cloud) == before  # the safety set went too
    if cloud.rebuilds[:1] == [(server, snapshot_set.id)] and \
            point != 'nova.rebuild':
        # Rebuilt (or tried): the root and the ephemeral disk come back
        # from the safety set.
        assert len(cloud.rebuilds) == 2
        assert [c[2] for c in agent.calls if c[0] == 'write'][-1] == 'vdb'
    assert seen[-1].step == events.ROLLBACK and seen[-1].state == events.DONE


def test_an_undo_that_fails_keeps_the_safety_set(cloud, agent, taken):
    """The old volume cannot be attached again: the safety set, which
    holds it as it was, is kept and named."""
    server, snapshot_set = taken
    seen = []

    def progress(event):
        seen.append(event)
        if event.step == events.ATTACH and event.state == events.STARTED:
            cloud.fail_at.add('nova.attach')
    with pytest.raises(errors.RestoreFailed) as failed:
        inplace.restore_in_place(
            cloud, snapshot_set.id, clock=fakes.FakeClock(cloud),
            agent_locator=fakes.FakeAgents(agent), progress=progress)
    (safety,) = [e.set_id for e in seen if e.step == events.SAFETY_SET
                 and e.state == events.DONE]
    assert sets.get_set(cloud, safety).undo_of
    assert any('kept: the server could not be put back entirely, and set '
               '%s holds its drives as they were' % safety in f
               for f in failed.value.rollback_failures)
    assert cloud.server_status(server) == 'ACTIVE'


def _faults(cloud, at_step, points, then=()):
    """``points`` fail from when ``at_step`` starts; at the rollback they
    are cleared and ``then`` fail instead."""
    def progress(event):
        if event.step == at_step and event.state == events.STARTED:
            cloud.fail_at.update(points)
        if event.step == events.ROLLBACK and event.state == events.STARTED:
            cloud.fail_at.difference_update(points)
            cloud.fail_at.update(then)
    return progress


def test_a_volume_that_cannot_go_back_at_its_device_keeps_the_safety_set(
        cloud, agent, taken):
    """Nova will not detach the new volume: the old one would come back
    at another device. That is a failure, and the safety set stays."""
    server, snapshot_set = taken
    old = attached(cloud, server)['/dev/vdc']
    seen = []
    fail = _faults(cloud, events.WRITE, {'agent.write'}, {'nova.detach'})
    with pytest.raises(errors.RestoreFailed) as failed:
        inplace.restore_in_place(
            cloud, snapshot_set.id, clock=fakes.FakeClock(cloud),
            agent_locator=fakes.FakeAgents(agent),
            progress=lambda e: (seen.append(e), fail(e)))
    (safety,) = [e.set_id for e in seen if e.step == events.SAFETY_SET
                 and e.state == events.DONE]
    failures = failed.value.rollback_failures
    assert any('volume %s is attached again as /dev/vdd, not /dev/vdc'
               % old in f for f in failures), failures
    assert any('kept' in f and safety in f for f in failures), failures
    assert sets.get_set(cloud, safety).status == sets.AVAILABLE


def test_an_undo_the_service_did_not_answer_is_tried_again_in_its_turn(
        cloud, agent, taken):
    """The rebuild back is refused once as a dropped connection: it is
    tried again before the server is started, so the server runs at the
    end and nothing is kept."""
    from keystoneauth1 import exceptions as ks_exceptions
    server, snapshot_set = taken
    before = snapshot(cloud)
    rebuild = cloud.nova.servers.rebuild
    calls = []

    def flaky(server_id, image):
        calls.append(image)
        if len(calls) == 2:  # the rebuild back, first try
            raise ks_exceptions.ConnectFailure('connection reset')
        return rebuild(server_id, image)
    cloud.nova.servers.rebuild = flaky
    fail = _faults(cloud, events.WRITE, {'agent.write'})
    with pytest.raises(errors.RestoreFailed) as failed:
        inplace.restore_in_place(
            cloud, snapshot_set.id, clock=fakes.FakeClock(cloud),
            agent_locator=fakes.FakeAgents(agent), progress=fail)
    assert failed.value.rollback_failures == []
    assert len(calls) == 3
    assert cloud.server_status(server) == 'ACTIVE'
    assert snapshot(cloud) == before


def test_a_done_restore_that_cannot_be_marked_is_not_undone(
        cloud, agent, taken):
    server, snapshot_set = taken
    update = cloud.glance.images.update

    def refusing(image_id, **fields):
        if properties.DELIVERED in fields:
            raise RuntimeError('Glance said 500')
        return update(image_id, **fields)
    cloud.glance.images.update = refusing
    safety = restore_(cloud, agent, snapshot_set.id)
    new = attached(cloud, server)['/dev/vdc']
    assert cloud.volumes[new]['metadata'][properties.DELIVERED] == 'True'
    assert sets.get_set(cloud, safety.id).status == sets.AVAILABLE
    assert cloud.rebuilds == [(server, snapshot_set.id)]
    assert cloud.server_status(server) == 'ACTIVE'


def test_local_disks_of_a_shut_off_server_are_refused(cloud, agent, taken):
    """Its safety set could not copy them: refused before anything is
    made (its volumes alone can be restored)."""
    server, snapshot_set = taken
    cloud.servers[server]['status'] = 'SHUTOFF'
    before = snapshot(cloud)
    with pytest.raises(errors.CannotRestoreInPlace) as refused:
        restore_(cloud, agent, snapshot_set.id)
    assert set(refused.value.reasons) == {'/dev/vda', '/dev/vdb'}
    assert 'start it first' in refused.value.reasons['/dev/vda']
    assert snapshot(cloud) == before


def test_a_rebuilt_server_is_written_once_nova_stopped_it_again(
        cloud, agent, taken):
    """Nova shows a stopped server it rebuilt as active for a moment
    before stopping it: the ephemeral disk is written only once it is
    shut off again."""
    server, snapshot_set = taken
    cloud.rebuild_shows_active = True
    restore_(cloud, agent, snapshot_set.id)
    assert ('write', server, 'vdb', {d.name: d for d in snapshot_set.drives}[
        '/dev/vdb'].image_id) in agent.calls
    assert cloud.server_status(server) == 'ACTIVE'
