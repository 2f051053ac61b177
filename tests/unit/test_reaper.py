"""The reaper: what dead runs left, and only that, is deleted."""

import datetime
import json

from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import reaper
from snapshot_dashboard.orchestration import run
from tests.unit import fakes

VOLUMES = [('/dev/vdb', 1)]
A_DAY_LATER = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)


def dead_run(cloud, server, run_id):
    """What a CLI run killed after its captures leaves: a volume snapshot
    and Nova's image, tagged with the run, and no set."""
    volume = cloud.attachments[server][0]['volumeId']
    snapshot = cloud.cinder.volume_snapshots.create(
        volume, force=True, metadata={properties.RUN: run_id})
    image = cloud.glance.images.create(image_type='snapshot',
                                       instance_uuid=server,
                                       **{properties.RUN: run_id,
                                          properties.SERVER: server})
    cloud.tick()
    cloud.tick()
    return {snapshot.id, image['id']}


def everything(cloud):
    return set(cloud.snapshots) | set(cloud.images)


def never_live(run_id):
    return False


def test_a_dead_runs_leftovers_are_deleted_after_the_grace():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    left = dead_run(cloud, server, 'run-dead')
    young = datetime.datetime(2026, 11, 25, 0, 30,
                              tzinfo=datetime.timezone.utc)
    assert reaper.reap(cloud, never_live, grace_s=7200, now=young) == (
        [], [])
    assert left <= everything(cloud)
    deleted, failures = reaper.reap(cloud, never_live, grace_s=7200,
                                    now=A_DAY_LATER)
    assert {d.id for d, _ in deleted} == left
    assert failures == []
    assert not left & everything(cloud)


def test_a_packaged_set_and_a_live_run_are_kept():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', wait=True,
        clock=fakes.FakeClock(cloud))
    live = dead_run(cloud, server, 'run-live')
    before = everything(cloud)
    assert reaper.reap(cloud, lambda run_id: run_id == 'run-live',
                       now=A_DAY_LATER) == ([], [])
    assert everything(cloud) == before
    assert snapshot_set.id in before and live <= before


def test_untagged_resources_are_never_touched():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    volume = cloud.attachments[server][0]['volumeId']
    cloud.cinder.volume_snapshots.create(volume, force=True)
    cloud.glance.images.create(image_type='snapshot')
    before = everything(cloud)
    assert reaper.reap(cloud, never_live, now=A_DAY_LATER) == ([], [])
    assert everything(cloud) == before


def test_a_crafted_set_protects_no_leftover_and_stops_no_reaper():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    left = dead_run(cloud, server, 'run-dead')
    (snapshot_id,) = cloud.snapshots
    # Another project's image claims the leftover snapshot as its own set's;
    # a third is a set with unreadable drives.
    for devices in (json.dumps([{'name': '/dev/vdb', 'kind': 'volume',
                                 'size_gb': 1,
                                 'snapshot_id': snapshot_id}]), '{not json',
                    '[1]', '{"name": "x"}'):
        image = cloud.glance.images.create(image_type='snapshot')
        cloud.images[image['id']].update({
            properties.SET_ID: image['id'], properties.DEVICES: devices,
            'owner': fakes.OTHER_PROJECT})
    deleted, _ = reaper.reap(cloud, never_live, now=A_DAY_LATER)
    assert {d.id for d, _ in deleted} == left


def test_a_set_whose_image_was_deleted_through_glance_keeps_its_snapshots():
    # The user's data: the reaper deletes only what no set ever held.
    cloud = fakes.FakeCloud()
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', wait=True,
        clock=fakes.FakeClock(cloud))
    del cloud.images[snapshot_set.id]
    assert reaper.reap(cloud, never_live, now=A_DAY_LATER) == ([], [])
    assert set(snapshot_set.snapshot_ids) == set(cloud.snapshots)


def test_a_set_that_never_became_usable_is_a_leftover():
    # Glance went away during the upload and the rollback could not remove
    # the set: its image stays queued, and names its snapshot.
    cloud = fakes.FakeCloud()
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', clock=fakes.FakeClock(cloud))
    cloud.images[snapshot_set.id]['status'] = 'queued'
    for snapshot in cloud.snapshots.values():
        snapshot['metadata'].pop(properties.PACKAGED_IN, None)
    deleted, _ = reaper.reap(cloud, never_live, now=A_DAY_LATER)
    assert {d.id for d, _ in deleted} == (
        {snapshot_set.id} | set(snapshot_set.snapshot_ids))
    assert everything(cloud) == set()


def test_a_snapshot_that_inherited_a_sets_properties_is_the_users():
    # Nova copies a base image's properties onto a snapshot of a server
    # booted from it: a set's run tag and server come along.
    cloud = fakes.FakeCloud()
    cloud.glance.images.create(
        image_type='snapshot', instance_uuid='server-booted-from-the-set',
        **{properties.RUN: 'run-finished', properties.SERVER: 'server-1'})
    before = everything(cloud)
    assert reaper.reap(cloud, never_live, now=A_DAY_LATER) == ([], [])
    assert everything(cloud) == before


def test_a_set_still_uploading_for_a_caller_who_did_not_wait_is_not_marked():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(ephemeral_gb=1, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, copies=True)
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', clock=fakes.FakeClock(cloud),
        agent_locator=fakes.FakeAgents(agent))
    assert snapshot_set.status != 'available'
    assert not any(properties.PACKAGED_IN in s['metadata']
                   for s in cloud.snapshots.values())


def test_a_dead_runs_agent_copy_is_removed_and_a_live_ones_kept():
    # A CLI run killed after the agent copied its local drive: the copy
    # waits on the compute node for an export nobody will ask for.
    cloud = fakes.FakeCloud()
    server = cloud.add_server(ephemeral_gb=1)
    agent = fakes.FakeAgent(cloud, copies=True)
    dead = agent.capture(server, ['vda'], None, 'run-dead')
    live = agent.capture(server, ['vdb'], None, 'run-live')
    untagged = agent.capture(server, ['vda'])
    agent.copy_age_s = 60
    assert reaper.reap(cloud, lambda run_id: run_id == 'run-live',
                       grace_s=120, agents=[agent]) == ([], [])
    agent.copy_age_s = 7201
    deleted, failures = reaper.reap(
        cloud, lambda run_id: run_id == 'run-live', agents=[agent])
    assert [(d.kind, d.id, d.run_id, d.server_id) for d, _ in deleted] == [
        (events.AGENT_COPY, dead['id'], 'run-dead', server)]
    assert failures == []
    assert {c['id'] for c in agent.copies_held} == {live['id'],
                                                    untagged['id']}


def test_an_agent_that_cannot_be_asked_stops_no_reaper():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(ephemeral_gb=1, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, copies=True)
    agent.capture(server, ['vda'], None, 'run-dead')
    agent.listable = False
    left = dead_run(cloud, server, 'run-dead')
    deleted, failures = reaper.reap(cloud, never_live, now=A_DAY_LATER,
                                    agents=[agent])
    assert {d.id for d, _ in deleted} == left
    assert failures == []
    assert len(agent.copies_held) == 1  # left to its capture_keep


def test_a_snapshot_its_cinder_volume_left_creating_is_reset_and_deleted():
    # cinder-volume killed while making it: Cinder refuses to delete it as
    # it is and never moves it on.
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    volume = cloud.attachments[server][0]['volumeId']
    stuck = cloud.cinder.volume_snapshots.create(
        volume, force=True, metadata={properties.RUN: 'run-dead'})
    assert cloud.snapshots[stuck.id]['status'] == 'creating'
    deleted, failures = reaper.reap(cloud, never_live, now=A_DAY_LATER)
    (leftover, outcome), = deleted
    assert leftover.id == stuck.id
    assert outcome == 'deleted after a reset from creating to error'
    assert failures == []
    assert stuck.id not in cloud.snapshots


def test_a_snapshot_cinder_is_still_moving_on_is_left_alone():
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    volume = cloud.attachments[server][0]['volumeId']
    deleting = cloud.cinder.volume_snapshots.create(
        volume, force=True, metadata={properties.RUN: 'run-dead'})
    cloud.snapshots[deleting.id].update(
        status='deleting', updated_at='2026-11-25T23:30:00.000000')
    assert reaper.reap(cloud, never_live, now=A_DAY_LATER) == ([], [])
    assert cloud.snapshots[deleting.id]['status'] == 'deleting'


def test_a_dead_restores_undelivered_volume_goes_and_the_users_stay():
    from snapshot_dashboard.orchestration import restore
    cloud = fakes.FakeCloud()
    server = cloud.add_server(volumes=VOLUMES)
    other = cloud.add_server(name='other')
    snapshot_set = run.create_snapshot_set(
        cloud, server, consistency='crash', wait=True,
        clock=fakes.FakeClock(cloud))
    delivered = restore.restore_as_volumes(
        cloud, snapshot_set.id, devices=['/dev/vdb'], run_id='run-ok',
        clock=fakes.FakeClock(cloud))
    made = {}
    for run_id, attach_to in (('run-dead', None), ('run-dead-attached',
                                                   other)):
        (volume,) = restore.restore_as_volumes(
            cloud, snapshot_set.id, devices=['/dev/vdb'], run_id=run_id,
            attach_to=attach_to, clock=fakes.FakeClock(cloud))
        # As if its run died before the mark.
        del cloud.volumes[volume.volume_id]['metadata'][
            properties.DELIVERED]
        made[run_id] = volume.volume_id
    users = cloud.add_volume('mine', 1)
    deleted, failures = reaper.reap(cloud, never_live, now=A_DAY_LATER)
    assert [(d.kind, d.id) for d, _ in deleted] == [
        (events.VOLUME, made['run-dead'])]
    assert failures == []
    assert {delivered[0].volume_id, made['run-dead-attached'], users} <= set(
        cloud.volumes)
    assert made['run-dead'] not in cloud.volumes
