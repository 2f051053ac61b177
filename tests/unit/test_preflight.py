"""The pre-flight against in-memory Nova, Cinder, Glance and agent: what a
user is shown before choosing, and the checks of a choice."""

import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import preflight
from tests.unit import fakes

VOLUMES = [('/dev/vdc', 2), ('/dev/vdd', 3)]


@pytest.fixture
def cloud():
    return fakes.FakeCloud()


def check(cloud, server_id, agent=None):
    return preflight.check(cloud, server_id,
                           fakes.FakeAgents(agent) if agent else None)


def by_name(result):
    return {d.name: d for d in result.drives}


def test_with_an_agent_and_a_guest_agent_every_drive_and_level_is_offered(
        cloud):
    server = cloud.add_server(ephemeral_gb=1, volumes=VOLUMES)
    result = check(cloud, server, fakes.FakeAgent(cloud, copies=True))
    assert [(d.name, d.kind, d.reason) for d in result.drives] == [
        ('/dev/vda', 'root-image', None), ('/dev/vdb', 'ephemeral', None),
        ('/dev/vdc', 'volume', None), ('/dev/vdd', 'volume', None)]
    assert (result.agent, result.guest_agent) == (True, True)
    assert result.expected == {'auto': 'application',
                               'application': 'application',
                               'crash': 'crash', 'none': 'none'}
    assert result.refused == {}
    assert [(q.resource, q.needed) for q in result.quotas] == [
        ('volume snapshots', 2), ('volume gigabytes', 5), ('images', 2)]


def test_without_an_agent_the_ephemeral_disk_and_application_are_refused(
        cloud):
    server = cloud.add_server(ephemeral_gb=1, volumes=VOLUMES)
    result = check(cloud, server)
    drives = by_name(result)
    assert 'compute-side agent' in drives['/dev/vdb'].reason
    assert drives['/dev/vda'].reason is None  # through Nova's createImage
    assert [d.name for d in result.capturable] == [
        '/dev/vda', '/dev/vdc', '/dev/vdd']
    assert (result.agent, result.guest_agent) == (False, False)
    assert 'no compute-side agent is configured' in result.refused[
        'application']
    assert result.expected['auto'] == 'crash'
    # The ephemeral disk it cannot take costs no image.
    assert ('images', 1) in [(q.resource, q.needed) for q in result.quotas]


def test_a_guest_agent_that_does_not_answer_refuses_application(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    result = check(cloud, server, fakes.FakeAgent(cloud, guest_agent=False))
    assert (result.agent, result.guest_agent) == (True, False)
    assert 'guest agent' in result.refused['application']
    assert result.expected['auto'] == 'crash'


def test_a_stopped_server_has_every_drive_at_one_instant(cloud):
    server = cloud.add_server(volumes=VOLUMES, status='SHUTOFF')
    result = check(cloud, server, fakes.FakeAgent(cloud))
    assert 'SHUTOFF' in result.refused['application']
    assert result.expected['crash'] == 'crash'
    assert result.expected['auto'] == 'crash'


def test_another_projects_server_is_not_found_and_its_agent_not_asked(
        cloud):
    server = cloud.add_server(project_id=fakes.OTHER_PROJECT)
    agent = fakes.FakeAgent(cloud)
    asked = []
    agent.server = asked.append
    with pytest.raises(errors.ServerNotFound):
        check(cloud, server, agent)
    assert asked == []


def test_a_choice_is_checked_against_the_same_reading(cloud):
    server = cloud.add_server(ephemeral_gb=1, volumes=VOLUMES)
    cloud.limits.update(maxTotalVolumeGigabytes=10, totalGigabytesUsed=6)
    result = check(cloud, server)
    # Only what was chosen counts against the quotas.
    checks = {q.resource: q for q in result.check_selection(['vda', 'vdc'])}
    assert (checks['volume snapshots'].needed,
            checks['volume gigabytes'].needed) == (1, 2)
    assert checks['volume gigabytes'].ok
    short = {q.resource: q.ok for q in result.check_selection(
        ['/dev/vdc', '/dev/vdd'])}
    assert short['volume gigabytes'] is False
    assert result.check_selection(None) == list(result.quotas)


def test_a_drive_that_cannot_be_captured_is_refused_when_chosen(cloud):
    server = cloud.add_server(ephemeral_gb=1, volumes=VOLUMES)
    result = check(cloud, server)
    with pytest.raises(errors.DeviceNotCapturable) as raised:
        result.check_selection(['/dev/vda', 'vdb'])
    assert list(raised.value.reasons) == ['/dev/vdb']


def test_unknown_drives_and_an_empty_choice_are_refused(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    result = check(cloud, server)
    with pytest.raises(errors.UnknownDevices) as raised:
        result.check_selection(['/dev/vdz', 'vdc'])
    assert raised.value.unknown == ['/dev/vdz']
    with pytest.raises(errors.NothingSelected):
        result.check_selection([])


def test_a_cloud_without_glance_usage_has_no_image_quota(cloud):
    server = cloud.add_server()

    def no_usage():
        raise preflight.glance_exceptions.HTTPNotFound()
    cloud.glance.info.get_usage = no_usage
    result = check(cloud, server)
    assert [q.resource for q in result.quotas] == []


def test_an_agent_that_does_not_answer_is_asked_once(cloud):
    # Each probe of an unreachable agent can cost its whole timeout.
    server = cloud.add_server(volumes=VOLUMES)
    agent = fakes.FakeAgent(cloud, reachable=False)
    asked = []
    answer = agent.server
    agent.server = lambda server_id: asked.append(server_id) or answer(
        server_id)
    result = check(cloud, server, agent)
    assert asked == [server]
    assert (result.agent, result.expected['auto']) == (False, 'crash')
    assert 'does not answer' in result.refused['application']
