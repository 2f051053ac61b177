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
        agents=fakes.FakeAgents(agent), **kwargs)


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


def test_watchdog_first_relabels_auto_as_crash(cloud):
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, watchdog_first=True)
    snapshot_set = take(cloud, server, agent)
    assert snapshot_set.consistency == 'crash'
    assert cloud.images[snapshot_set.id][
        'snapshot_set_consistency'] == 'crash'


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
