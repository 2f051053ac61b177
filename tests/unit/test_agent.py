"""The agent's API against libvirt's ``test:///default`` driver.

The test driver implements fsFreeze, fsThaw, suspend, resume and domain
metadata, so leases, the watchdog and authorization run on real libvirt
calls. Its ``fsThaw`` answers how many filesystems it thawed: 0 proves a
guest was not (or no longer) frozen. Real guests are the integration
tests' part.
"""

import json
import os
import time

import libvirt
from oslo_config import cfg
import pytest
import webob

from snapshot_dashboard import web
from snapshot_dashboard.agent import captures as captures_module
from snapshot_dashboard.agent import conf as conf_module
from snapshot_dashboard.agent import deploy
from snapshot_dashboard.agent import handlers

OWNER = 'project-owner'
NOVA_METADATA = ('<instance><owner><user uuid="u1"/><project uuid="%s"/>'
                 '</owner></instance>' % OWNER)


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    deploy.register(conf)
    conf([], project='snapshot-dashboard')
    conf.set_override('connection_uri', 'test:///default', group='libvirt')
    conf.set_override('max_budget', 30, group='agent')
    conf.set_override('state_dir', str(tmp_path / 'state'), group='agent')
    return conf


@pytest.fixture
def agent(conf):
    agent = deploy.make_agent(conf)
    yield agent
    agent.leases.stop()


@pytest.fixture
def domain(agent):
    # The agent's own connection: each test:/// connection has its state.
    domain = agent.hypervisor.connection().lookupByName('test')
    domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NOVA_METADATA,
                       'nova', 'http://openstack.org/xmlns/libvirt/nova/1.1',
                       0)
    return domain


def call(agent, method, path, body=None, project=OWNER, roles='member'):
    request = webob.Request.blank(path, method=method)
    request.headers['X-Project-Id'] = project
    request.headers['X-Roles'] = roles
    if body is not None:
        request.body = json.dumps(body).encode()
        request.content_type = 'application/json'
    response = request.get_response(web.Router(handlers.ROUTES, agent))
    return response.status_int, response.json


def frozen(domain):
    """Thaw and tell whether anything was frozen (the test driver counts)."""
    return domain.fsThaw() > 0


def test_freeze_then_thaw_with_the_lease(agent, domain):
    status, body = call(agent, 'POST', '/v1/servers/%s/freeze'
                        % domain.UUIDString(), {'budget_s': 10})
    assert status == 201
    lease = body['lease']
    assert (lease['kind'], lease['released_by']) == ('freeze', None)
    status, body = call(agent, 'POST', '/v1/servers/%s/thaw'
                        % domain.UUIDString(), {'lease': lease['id']})
    assert status == 200
    assert body['lease']['released_by'] == 'caller'
    assert not frozen(domain)


def test_a_second_freeze_is_refused_and_changes_nothing(agent, domain):
    uuid = domain.UUIDString()
    _, first = call(agent, 'POST', '/v1/servers/%s/freeze' % uuid,
                    {'budget_s': 10})
    status, body = call(agent, 'POST', '/v1/servers/%s/freeze' % uuid,
                        {'budget_s': 10})
    assert status == 409
    assert 'already held' in body['message']
    assert agent.leases.active(uuid).id == first['lease']['id']


def test_the_watchdog_thaws_when_the_budget_runs_out(agent, domain):
    uuid = domain.UUIDString()
    _, body = call(agent, 'POST', '/v1/servers/%s/freeze' % uuid,
                   {'budget_s': 0.2})
    time.sleep(0.6)
    assert not frozen(domain)
    assert agent.leases.active(uuid) is None
    # The caller coming back late learns the freeze did not last.
    status, late = call(agent, 'POST', '/v1/servers/%s/thaw' % uuid,
                        {'lease': body['lease']['id']})
    assert status == 409
    assert late['lease']['released_by'] == 'watchdog'
    assert 180 <= late['lease']['held_ms'] < 1000


def test_a_pause_lease_expires_into_a_running_guest(agent, domain):
    uuid = domain.UUIDString()
    status, _ = call(agent, 'POST', '/v1/servers/%s/pause' % uuid,
                     {'budget_s': 0.2})
    assert status == 201
    assert domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    time.sleep(0.6)
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_pause_and_resume(agent, domain):
    uuid = domain.UUIDString()
    _, body = call(agent, 'POST', '/v1/servers/%s/pause' % uuid,
                   {'budget_s': 10})
    status, body = call(agent, 'POST', '/v1/servers/%s/resume' % uuid,
                        {'lease': body['lease']['id']})
    assert status == 200
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_a_paused_guest_cannot_be_frozen(agent, domain):
    domain.suspend()
    status, body = call(agent, 'POST', '/v1/servers/%s/freeze'
                        % domain.UUIDString(), {'budget_s': 10})
    assert status == 409
    assert 'paused' in body['message']
    assert agent.leases.active(domain.UUIDString()) is None


def test_another_project_is_refused_and_the_guest_untouched(agent, domain):
    status, _ = call(agent, 'POST', '/v1/servers/%s/freeze'
                     % domain.UUIDString(), {'budget_s': 10},
                     project='someone-else')
    assert status == 403
    assert not frozen(domain)
    status, _ = call(agent, 'GET', '/v1/servers/%s' % domain.UUIDString(),
                     project='someone-else')
    assert status == 403


def test_a_guest_nova_does_not_own_is_refused(agent):
    domain = agent.hypervisor.connection().lookupByName('test')
    status, _ = call(agent, 'POST', '/v1/servers/%s/pause'
                     % domain.UUIDString(), {'budget_s': 10})
    assert status == 403
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_a_service_token_may_act_on_any_project(agent, domain):
    status, _ = call(agent, 'POST', '/v1/servers/%s/freeze'
                     % domain.UUIDString(), {'budget_s': 10},
                     project='service-project', roles='service')
    assert status == 201


@pytest.mark.parametrize('body', [{}, {'budget_s': 0}, {'budget_s': 31},
                                  {'budget_s': 'soon'}])
def test_a_bad_budget_is_refused_untouched(agent, domain, body):
    status, body = call(agent, 'POST', '/v1/servers/%s/freeze'
                        % domain.UUIDString(), body)
    assert status == 400
    assert 'budget_s' in body['message']
    assert not frozen(domain)


def test_unknown_server_and_lease(agent, domain):
    status, _ = call(agent, 'GET',
                     '/v1/servers/00000000-0000-0000-0000-000000000000')
    assert status == 404
    status, _ = call(agent, 'POST', '/v1/servers/%s/thaw'
                     % domain.UUIDString(), {'lease': 'no-such-lease'})
    assert status == 404


def test_show_server(agent, domain):
    status, body = call(agent, 'GET', '/v1/servers/%s' % domain.UUIDString())
    assert status == 200
    server = body['server']
    assert server['power_state'] == 'running'
    # The test driver has no guest agent channel.
    assert server['guest_agent'] is False
    assert server['lease'] is None


def test_stopping_the_agent_thaws_and_resumes_everything(agent, domain):
    uuid = domain.UUIDString()
    call(agent, 'POST', '/v1/servers/%s/freeze' % uuid, {'budget_s': 30})
    released = agent.leases.stop()
    assert [lease.released_by for lease in released] == ['shutdown']
    assert not frozen(domain)


# -- restarts and failed releases ---------------------------------------------

def test_a_pause_left_by_an_agent_that_died_is_resumed_at_start(
        conf, agent, domain):
    uuid = domain.UUIDString()
    status, body = call(agent, 'POST', '/v1/servers/%s/pause' % uuid,
                        {'budget_s': 30})
    assert status == 201
    # The agent dies holding it (no stop()); the next one starts.
    restarted = deploy.make_agent(conf)
    try:
        ended, = restarted.release_inherited_leases()
        assert (ended.id, ended.released_by) == (body['lease']['id'],
                                                 'restart')
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        # The caller of the dead agent learns its pause did not last.
        status, late = call(restarted, 'POST', '/v1/servers/%s/resume'
                            % uuid, {'lease': body['lease']['id']})
        assert (status, late['lease']['released_by']) == (409, 'restart')
    finally:
        restarted.leases.stop()


def test_a_freeze_left_by_an_agent_that_died_is_thawed_at_start(
        conf, agent, domain):
    call(agent, 'POST', '/v1/servers/%s/freeze' % domain.UUIDString(),
         {'budget_s': 30})
    restarted = deploy.make_agent(conf)
    try:
        assert len(restarted.release_inherited_leases()) == 1
        assert not frozen(domain)
    finally:
        restarted.leases.stop()


def test_a_start_resumes_only_the_pauses_of_its_leases(conf, agent, domain):
    # Paused by someone else (Nova's pause is the same libvirt call).
    domain.suspend()
    restarted = deploy.make_agent(conf)
    try:
        assert restarted.release_inherited_leases() == []
        assert restarted.thaw_frozen_guests() == []
        assert domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    finally:
        restarted.leases.stop()


def test_a_lease_that_cannot_be_recorded_is_a_503_untouched(
        conf, agent, domain):
    # A file where the state directory should be: nothing can be written.
    with open(conf.agent.state_dir, 'w'):
        pass
    status, body = call(agent, 'POST', '/v1/servers/%s/pause'
                        % domain.UUIDString(), {'budget_s': 10})
    assert status == 503
    assert 'not touched' in body['message']
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_show_server_shows_a_lease_whose_release_is_retried(
        agent, domain, monkeypatch):
    uuid = domain.UUIDString()
    _, body = call(agent, 'POST', '/v1/servers/%s/pause' % uuid,
                   {'budget_s': 30})

    def libvirtd_down(self):
        raise libvirt.libvirtError('Failed to connect socket')

    monkeypatch.setattr(type(domain), 'resume', libvirtd_down)
    status, failed = call(agent, 'POST', '/v1/servers/%s/resume' % uuid,
                          {'lease': body['lease']['id']})
    assert status == 500
    assert 'Failed to connect' in failed['message']
    _, shown = call(agent, 'GET', '/v1/servers/%s' % uuid)
    lease = shown['server']['lease']
    assert lease['id'] == body['lease']['id']
    assert 'Failed to connect' in lease['release_error']
    status, _ = call(agent, 'POST', '/v1/servers/%s/pause' % uuid,
                     {'budget_s': 30})
    assert status == 409
    monkeypatch.undo()
    for _ in range(100):
        if agent.leases.holding(uuid) is None:
            break
        time.sleep(0.05)
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    _, shown = call(agent, 'GET', '/v1/servers/%s' % uuid)
    assert shown['server']['lease'] is None


def test_the_deployed_agent_wants_a_token(conf, agent):
    conf.set_override('www_authenticate_uri', 'http://127.0.0.1:5000/v3',
                      group='keystone_authtoken')
    application = deploy.deploy(conf, agent)
    request = webob.Request.blank('/v1/servers/%s' % agent.hypervisor
                                  .connection().lookupByName('test')
                                  .UUIDString())
    response = request.get_response(application)
    assert response.status_int == 401


def test_the_sample_config_shows_every_option_with_its_default():
    sample = open(os.path.join(os.path.dirname(deploy.__file__),
                               'agent.conf.sample')).read()
    for group, options in conf_module.list_opts():
        section = sample.split('[%s]' % group, 1)[1].split('\n[', 1)[0]
        for option in options:
            default = option.sample_default or option.default
            if isinstance(default, list):
                default = ','.join(default)
            if default is None:
                default = '<None>'
            assert '#%s = %s' % (option.name, default) in section, option.name


# -- captures ---------------------------------------------------------------

@pytest.fixture
def capture_dir(conf, tmp_path):
    conf.set_override('capture_dir', str(tmp_path / 'captures'),
                      group='agent')
    return tmp_path / 'captures'


def captures_path(domain):
    return '/v1/servers/%s/captures' % domain.UUIDString()


@pytest.mark.parametrize('body', [{}, {'devices': []}, {'devices': 'vda'},
                                  {'devices': [1]}, ['vda']])
def test_a_capture_needs_a_list_of_drives(agent, domain, body):
    status, body = call(agent, 'POST', captures_path(domain), body)
    assert status == 400


def test_a_capture_of_an_unknown_drive_is_refused(agent, domain,
                                                  capture_dir):
    status, body = call(agent, 'POST', captures_path(domain),
                        {'devices': ['vdz']})
    assert status == 409
    assert 'no local drive vdz' in body['message']
    assert 'vda' in body['message']
    assert not capture_dir.exists() or not list(capture_dir.iterdir())


def test_show_server_says_which_drives_can_be_captured(agent, domain):
    status, body = call(agent, 'GET', '/v1/servers/%s' % domain.UUIDString())
    drive, = body['server']['local_drives']
    # The test driver's disk has no format: QEMU could not copy it.
    assert (drive['device'], drive['capturable']) == ('vda', False)
    assert 'format' in drive['reason']


def test_a_capture_outside_its_lease_is_refused(agent, domain, capture_dir):
    status, body = call(agent, 'POST', captures_path(domain),
                        {'devices': ['vda'], 'lease': 'not-a-lease'})
    assert status == 409
    assert 'does not hold' in body['message']
    assert not capture_dir.exists() or not list(capture_dir.iterdir())


def test_another_projects_capture_is_refused(agent, domain, capture_dir):
    status, _ = call(agent, 'POST', captures_path(domain),
                     {'devices': ['vda']}, project='someone-else')
    assert status == 403


def made_capture(agent, domain, tmp_path, project=OWNER):
    """A copied capture as ``begin`` leaves it (the test driver has no
    backup jobs), of ``domain`` owned by ``project``."""
    folder = tmp_path / 'capture-1'
    folder.mkdir()
    (folder / 'vda.qcow2').write_bytes(b'copy')
    capture = captures_module.Capture(
        id='capture-1', server=domain.UUIDString(), folder=str(folder),
        drives=[{'device': 'vda', 'file': str(folder / 'vda.qcow2'),
                 'format': 'qcow2', 'source': '/d/disk'}],
        lease=None, began_ms=1.0, state=captures_module.COPIED,
        project=project)
    agent.captures._captures[capture.id] = capture
    return capture


def no_libvirt(agent, monkeypatch):
    def lookup(uuid):
        raise AssertionError('libvirt asked')
    monkeypatch.setattr(agent.hypervisor, 'guest', lookup)
    monkeypatch.setattr(agent.hypervisor, 'connection', lookup)


def test_a_capture_is_only_for_the_project_that_owned_its_server(
        agent, domain, tmp_path, monkeypatch):
    capture = made_capture(agent, domain, tmp_path)
    no_libvirt(agent, monkeypatch)
    path = captures_path(domain) + '/' + capture.id
    for method, suffix, body in [('GET', '', None), ('DELETE', '', None),
                                 ('POST', '/export', {'images': [
                                     {'device': 'vda', 'image': 'i'}]})]:
        status, refused = call(agent, method, path + suffix, body,
                               project='someone-else')
        assert status == 403, method
        assert 'not in your project' in refused['message']
    assert capture.state == captures_module.COPIED
    status, shown = call(agent, 'GET', path, project='someone-else',
                         roles='reader,service')
    assert status == 200
    assert shown['capture']['id'] == capture.id


def test_export_and_delete_of_a_capture_ask_libvirt_nothing(
        agent, domain, tmp_path, monkeypatch):
    # libvirtd restarting: any lookup would fail.
    capture = made_capture(agent, domain, tmp_path)
    no_libvirt(agent, monkeypatch)
    agent.uploader = lambda token_auth: (lambda image, path, finish=None: None)
    path = captures_path(domain) + '/' + capture.id
    status, body = call(agent, 'POST', path + '/export', {'images': [
        {'device': 'vda', 'image': 'image-1'}]})
    assert status == 202
    assert body['capture']['exports']['vda']['image'] == 'image-1'
    status, body = call(agent, 'DELETE', path)
    assert status == 200
    assert body['capture']['state'] == 'deleted'
    assert not os.path.exists(capture.folder)


def test_a_capture_of_a_server_nova_does_not_own_is_for_services_only(
        agent, domain, tmp_path, monkeypatch):
    capture = made_capture(agent, domain, tmp_path, project=None)
    no_libvirt(agent, monkeypatch)
    path = captures_path(domain) + '/' + capture.id
    assert call(agent, 'DELETE', path)[0] == 403
    assert call(agent, 'DELETE', path, roles='admin')[0] == 200


@pytest.mark.parametrize('run', ['', 7, 'a' * 65, 'run/../x', ['r']])
def test_a_capture_for_a_malformed_run_is_refused(agent, domain, run,
                                                  capture_dir):
    status, body = call(agent, 'POST', captures_path(domain),
                        {'devices': ['vda'], 'run': run})
    assert status == 400
    assert 'run must be' in body['message']
    assert not capture_dir.exists() or not list(capture_dir.iterdir())


def test_the_held_copies_are_listed_for_privileged_roles_only(
        agent, domain, tmp_path, monkeypatch):
    capture = made_capture(agent, domain, tmp_path)
    capture.run = 'run-1'
    no_libvirt(agent, monkeypatch)
    status, body = call(agent, 'GET', '/v1/captures')
    assert status == 403
    status, body = call(agent, 'GET', '/v1/captures', project='p',
                        roles='reader,service')
    assert status == 200
    listed, = body['captures']
    assert (listed['id'], listed['run'], listed['server'],
            listed['project']) == (capture.id, 'run-1', domain.UUIDString(),
                                   OWNER)
    assert listed['age_s'] >= 0
    call(agent, 'DELETE', captures_path(domain) + '/' + capture.id)
    assert call(agent, 'GET', '/v1/captures', roles='admin')[1] == {
        'captures': []}


def test_an_unknown_capture_is_404(agent, domain):
    for method, suffix, body in [('GET', '', None), ('DELETE', '', None),
                                 ('POST', '/export', {'images': [
                                     {'device': 'vda', 'image': 'i'}]})]:
        status, _ = call(agent, method, captures_path(domain) + '/nope'
                         + suffix, body)
        assert status == 404, method
