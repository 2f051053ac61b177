"""Running snapshot sets with the compute-side agent holding the guest."""

import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import run
from tests.unit import fakes

VOLUMES = [('/dev/vdb', 2), ('/dev/vdc', 1)]


@pytest.fixture
def cloud():
    return fakes.FakeCloud()


def take(cloud, server_id, agent, **kwargs):
    return run.create_snapshot_set(
        cloud, server_id, clock=fakes.FakeClock(cloud),
        agent_locator=fakes.FakeAgents(agent), **kwargs)


def held_while_creating(cloud, agent, server):
    seen = []
    cloud.on_tick.append(lambda: seen.append(agent.held.get(server)) if any(
        s['status'] == 'creating' for s in cloud.snapshots.values())
        else None)
    return seen


@pytest.mark.parametrize('consistency', ['application', 'auto'])
def test_guest_agent_answering_gives_application_consistency(
        cloud, consistency):
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud)
    seen = held_while_creating(cloud, agent, server)
    snapshot_set = take(cloud, server, agent, consistency=consistency)
    assert snapshot_set.consistency == 'application'
    assert set(seen) == {'freeze'}
    assert agent.calls == [('freeze', server), ('thaw', server)]
    assert agent.held == {}
    assert cloud.pause_calls == []


def test_guest_agent_silent_auto_pauses_through_the_agent(cloud):
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, guest_agent=False)
    seen = held_while_creating(cloud, agent, server)
    snapshot_set = take(cloud, server, agent)
    assert snapshot_set.consistency == 'crash'
    assert set(seen) == {'pause'}
    assert cloud.pause_calls == []  # not Nova's pause


@pytest.mark.parametrize('agent_kwargs, reason', [
    ({'guest_agent': False}, 'guest agent'),
    ({'reachable': False}, 'does not answer'),
])
def test_application_refused_without_a_quiescing_agent(cloud, agent_kwargs,
                                                       reason):
    server = cloud.add_server(volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, **agent_kwargs)
    with pytest.raises(errors.ConsistencyUnavailable) as raised:
        take(cloud, server, agent, consistency='application')
    assert reason in str(raised.value)
    assert (cloud.snapshots, cloud.images) == ({}, {})
    assert agent.held == {}


def test_agent_down_falls_back_to_novas_pause(cloud):
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, reachable=False)
    snapshot_set = take(cloud, server, agent)
    assert snapshot_set.consistency == 'crash'
    assert [c for c, _ in cloud.pause_calls] == ['pause', 'unpause']


def test_watchdog_first_relabels_auto_as_none_and_no_drive_shared(cloud):
    # The freeze ended before either drive's instant was reached: each was
    # taken at its own instant, after the thaw.
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, watchdog_first=True, watchdog_held_ms=50)
    snapshot_set = take(cloud, server, agent)
    assert snapshot_set.consistency == 'none'
    assert cloud.images[snapshot_set.id][
        'snapshot_set_consistency'] == 'none'
    assert not any(d.shared_instant for d in snapshot_set.drives)


def test_watchdog_after_every_drive_was_reached_keeps_the_level(cloud):
    # Ended by the watchdog, but only after both instants were reached
    # (each about 100 ms after the window opened): still application.
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, watchdog_first=True,
                            watchdog_held_ms=5000)
    snapshot_set = take(cloud, server, agent, consistency='application')
    assert snapshot_set.consistency == 'application'
    assert all(d.shared_instant for d in snapshot_set.drives)


def test_watchdog_first_fails_a_required_level_and_keeps_nothing(cloud):
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, watchdog_first=True)
    with pytest.raises(errors.CaptureFailed) as raised:
        take(cloud, server, agent, consistency='application')
    assert 'not application-consistent' in str(raised.value)
    for _ in range(5):
        cloud.tick()
    assert (cloud.snapshots, cloud.images) == ({}, {})


@pytest.mark.parametrize('point', ['cinder.snapshot_create',
                                   'cinder.snapshot_status',
                                   'nova.create_image', 'glance.update'])
def test_any_failure_thaws_and_keeps_nothing(cloud, point):
    server = cloud.add_server(volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud)
    cloud.fail_at.add(point)
    with pytest.raises(Exception):  # noqa: B017 - any failure, same end
        take(cloud, server, agent, consistency='application', wait=True)
    for _ in range(5):
        cloud.tick()
    assert agent.held == {}
    assert agent.calls[-1] == ('thaw', server)
    assert (cloud.snapshots, cloud.images) == ({}, {})


def base_image(cloud):
    cloud.images['image-cirros'] = fakes.Resource(
        id='image-cirros', status='active', owner='project-admin',
        name='cirros', kernel_id='kernel-1', hw_qemu_guest_agent='yes',
        checksum='abc', img_signature='sig', created_at='2026-01-01')


def test_local_drives_are_copied_inside_the_freeze_and_uploaded(cloud):
    base_image(cloud)
    server = cloud.add_server(ephemeral_gb=1, volumes=[('/dev/vdc', 1)])
    agent = fakes.FakeAgent(cloud, copies=True)
    snapshot_set = take(cloud, server, agent, consistency='application',
                        wait=True)
    captures = [c for c in agent.calls if c[0] == 'capture']
    # One copy of both local drives, inside the freeze, under its lease.
    assert captures == [('capture', server, ('vda', 'vdb'), 'lease-1',
                         'freeze')]
    assert agent.calls[-2][0] == 'thaw' and agent.calls[-1][0] == 'export'
    drives = {d.name: d for d in snapshot_set.drives}
    assert {n: d.captured_by for n, d in drives.items()} == {
        '/dev/vda': 'agent', '/dev/vdb': 'agent', '/dev/vdc': 'cinder'}
    assert all(d.shared_instant for d in drives.values())
    assert snapshot_set.status == 'available'
    # The root's copy is the set's image and inherits the base image's
    # properties, as Nova's snapshot would; the ephemeral copy is its own
    # image, uploaded before the set's image.
    assert drives['/dev/vda'].image_id == snapshot_set.id
    root = cloud.images[snapshot_set.id]
    assert (root['disk_format'], root['kernel_id'], root['base_image_ref'],
            root['status']) == ('qcow2', 'kernel-1', 'image-cirros', 'active')
    assert 'img_signature' not in root
    ephemeral = cloud.images[drives['/dev/vdb'].image_id]
    assert ephemeral['snapshot_set_member_of'] == snapshot_set.id
    assert ephemeral['status'] == 'active'
    assert [image for _, image in agent.calls[-1][2]] == [
        ephemeral['id'], snapshot_set.id]
    assert cloud.pause_calls == []  # no createImage, no Nova pause
    assert agent.copies_held == []


def test_the_agent_copy_replaces_createimage_only_where_it_can(cloud):
    server = cloud.add_server(ephemeral_gb=1)
    agent = fakes.FakeAgent(cloud, copies=False)
    snapshot_set = take(cloud, server, agent)
    # Without the agent's copy: Nova's createImage for the root, and the
    # ephemeral drive left out, with the reason on the set.
    assert [d.captured_by for d in snapshot_set.drives] == ['nova']
    assert snapshot_set.excluded[0]['device'] == '/dev/vdb'
    assert 'compute-side agent' in snapshot_set.excluded[0]['reason']


def test_deleting_a_set_deletes_its_ephemeral_copy_too(cloud):
    base_image(cloud)
    server = cloud.add_server(ephemeral_gb=1, volumes=[('/dev/vdc', 1)])
    agent = fakes.FakeAgent(cloud, copies=True)
    snapshot_set = take(cloud, server, agent, wait=True)
    run.sets.delete_set(cloud, snapshot_set.id)
    for _ in range(3):
        cloud.tick()
    assert set(cloud.images) == {'image-cirros'}
    assert cloud.snapshots == {}


@pytest.mark.parametrize('point', ['agent.capture', 'agent.upload',
                                   'glance.create', 'cinder.snapshot_create'])
def test_a_failed_copy_or_upload_keeps_nothing(cloud, point):
    base_image(cloud)
    server = cloud.add_server(ephemeral_gb=1, volumes=[('/dev/vdc', 1)])
    agent = fakes.FakeAgent(cloud, copies=True)
    cloud.fail_at.add(point)
    with pytest.raises(Exception) as raised:  # noqa: B017 - any, same end
        take(cloud, server, agent, consistency='application', wait=True)
    assert raised.value.rollback_failures == []
    for _ in range(5):
        cloud.tick()
    assert agent.held == {}
    assert agent.copies_held == []
    assert set(cloud.images) == {'image-cirros'}
    assert cloud.snapshots == {}


def test_a_superseded_run_still_releases_its_own_lease(cloud):
    # An agent's lease is released by its id: it can only be this run's.
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud)

    def progress(event):
        if event.step == 'capture' and event.state == 'done':
            raise errors.Superseded('run taken over')
    with pytest.raises(errors.Superseded):
        run.create_snapshot_set(cloud, server, clock=fakes.FakeClock(cloud),
                                agent_locator=fakes.FakeAgents(agent),
                                progress=progress)
    assert agent.held == {}
    assert agent.calls[-1] == ('thaw', server)
    assert cloud.snapshots  # left to the new owner


def test_a_set_is_available_only_once_its_ephemeral_copy_is_in(cloud):
    # Without the root, the set's own image carries no data and is active
    # at once; the copy of the ephemeral disk is uploaded after it.
    base_image(cloud)
    server = cloud.add_server(ephemeral_gb=1)
    agent = fakes.FakeAgent(cloud, copies=True)
    snapshot_set = take(cloud, server, agent, devices=['/dev/vdb'])
    assert cloud.images[snapshot_set.id]['status'] == 'active'
    assert run.sets.get_set(cloud, snapshot_set.id).status == 'creating'
    assert [s.status for s in run.sets.list_sets(cloud)] == ['creating']
    cloud.tick()  # the agent's upload ends
    assert run.sets.get_set(cloud, snapshot_set.id).status == 'available'
    assert [s.status for s in run.sets.list_sets(cloud)] == ['available']
