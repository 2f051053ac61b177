"""The compute-side agent on the mini-cloud's real guests, with real
Keystone tokens checked by keystonemiddleware."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.integration.conftest import Guest
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class AgentProcess:
    def __init__(self, config_file, port, log_file):
        self.config_file = config_file
        self.url = 'http://127.0.0.1:%d' % port
        self.log_file = log_file
        self.process = None

    def start(self):
        binary = os.path.join(os.path.dirname(sys.executable),
                              'snapshot-dashboard-agent')
        self.process = subprocess.Popen(
            [binary, '--config-file', self.config_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers():
            try:
                return requests.get(self.url, timeout=2).status_code
            except requests.ConnectionError:
                return None
        wait_for('the agent', answers, timeout_s=60, interval_s=0.2)

    def run_another(self):
        """A second agent on the same configuration, run to its end."""
        binary = os.path.join(os.path.dirname(sys.executable),
                              'snapshot-dashboard-agent')
        return subprocess.run([binary, '--config-file', self.config_file],
                              capture_output=True, timeout=60, check=False)

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def call(self, method, path, token=None, **body):
        headers = {'X-Auth-Token': token} if token else {}
        response = requests.request(method, self.url + path, json=body or None,
                                    headers=headers, timeout=60)
        return response.status_code, response.json()


@pytest.fixture(scope='module')
def agent(clouds_yaml, tmp_path_factory):
    with open(clouds_yaml) as f:
        service = json.load(f)['clouds']['minicloud-service']['auth']
    folder = tmp_path_factory.mktemp('agent')
    port = free_port()
    config_file = folder / 'agent.conf'
    config_file.write_text('\n'.join([
        '[DEFAULT]', 'log_file = %s' % (folder / 'agent.log'),
        '[agent]', 'bind_host = 127.0.0.1', 'bind_port = %d' % port,
        'max_budget = 60', 'capture_dir = %s' % (folder / 'captures'),
        'state_dir = %s' % (folder / 'state'),
        '[libvirt]', 'connection_uri = qemu:///system', 'agent_timeout = 3',
        'thaw_guard = 120',
        '[keystone_authtoken]',
        'www_authenticate_uri = %s' % service['auth_url'],
        'auth_url = %s' % service['auth_url'], 'auth_type = password',
        'username = %s' % service['username'],
        'password = %s' % service['password'],
        'project_name = %s' % service['project_name'],
        'user_domain_name = Default', 'project_domain_name = Default', '']))
    process = AgentProcess(str(config_file), port, folder / 'agent.log')
    process.capture_dir = folder / 'captures'
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope='module')
def token(demo):
    return demo.session.get_token()


@pytest.fixture(scope='module')
def server(demo, admin):
    server = server_by_name(demo, 'demo-image')
    guest = Guest(admin, server.id)
    guest.wait_until_answering()
    return server.id, guest


def counter_lines(guest, device='vda'):
    out = guest.shell('cat /mnt/%s/counter' % device)
    return [(int(n), float(t)) for n, t in
            (line.split() for line in out.splitlines() if line.strip())]


def longest_gap(lines, since_uptime):
    """The longest pause between lines written since ``since_uptime`` (0
    with fewer than two: the freeze can come right after that time)."""
    times = [t for _, t in lines if t >= since_uptime]
    return max((b - a for a, b in zip(times, times[1:], strict=False)),
               default=0)


def test_no_token_is_401(agent, server):
    status, _ = agent.call('GET', '/v1/servers/%s' % server[0])
    assert status == 401


def test_another_projects_token_is_403_and_the_guest_untouched(
        agent, server, demo2):
    status, _ = agent.call('POST', '/v1/servers/%s/freeze' % server[0],
                           token=demo2.session.get_token(), budget_s=10)
    assert status == 403
    assert server[1].command('guest-fsfreeze-status') == 'thawed'


def test_show_server(agent, server, token):
    status, body = agent.call('GET', '/v1/servers/%s' % server[0],
                              token=token)
    assert status == 200
    shown = body['server']
    assert (shown['power_state'], shown['guest_agent'],
            shown['freeze_status']) == ('running', True, 'thawed')
    assert [d['device'] for d in shown['local_drives']] == ['vda', 'vdb']


def test_freeze_stops_the_writers_and_thaw_resumes_them(agent, server,
                                                        token):
    uuid, guest = server
    since = counter_lines(guest)[-1][1]
    status, body = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                              token=token, budget_s=20)
    assert status == 201
    assert guest.command('guest-fsfreeze-status') == 'frozen'
    status, _ = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                           token=token, budget_s=20)
    assert status == 409
    time.sleep(2)
    status, body = agent.call('POST', '/v1/servers/%s/thaw' % uuid,
                              token=token, lease=body['lease']['id'])
    assert status == 200
    assert body['lease']['released_by'] == 'caller'
    assert guest.command('guest-fsfreeze-status') == 'thawed'
    time.sleep(1)
    # The writer waited out the freeze: one gap of about two seconds.
    assert longest_gap(counter_lines(guest), since) > 1.8


def test_the_watchdog_thaws_after_the_budget(agent, server, token):
    uuid, guest = server
    status, body = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                              token=token, budget_s=1)
    assert status == 201
    wait_for('the watchdog', lambda: guest.command(
        'guest-fsfreeze-status') == 'thawed', timeout_s=10, interval_s=0.2)
    status, late = agent.call('POST', '/v1/servers/%s/thaw' % uuid,
                              token=token, lease=body['lease']['id'])
    assert status == 409
    assert late['lease']['released_by'] == 'watchdog'


def test_a_pause_lease_expires_into_a_running_guest(agent, server, token,
                                                    demo):
    uuid, guest = server
    status, _ = agent.call('POST', '/v1/servers/%s/pause' % uuid,
                           token=token, budget_s=1)
    assert status == 201
    _, shown = agent.call('GET', '/v1/servers/%s' % uuid, token=token)
    assert shown['server']['power_state'] == 'paused'
    wait_for('the resume', lambda: agent.call(
        'GET', '/v1/servers/%s' % uuid, token=token)[1]['server'][
            'power_state'] == 'running', timeout_s=10, interval_s=0.2)
    guest.wait_until_answering(timeout_s=30)


def test_a_nova_paused_server_is_a_clear_409(agent, demo, token):
    server = server_by_name(demo, 'demo-volume')
    demo.nova.servers.pause(server.id)
    try:
        wait_for('Nova to pause', lambda: demo.nova.servers.get(
            server.id).status == 'PAUSED')
        started = time.monotonic()
        status, body = agent.call('POST', '/v1/servers/%s/freeze'
                                  % server.id, token=token, budget_s=10)
        assert status == 409
        assert 'paused' in body['message']
        assert time.monotonic() - started < 5
    finally:
        demo.nova.servers.unpause(server.id)
        wait_for('Nova to unpause', lambda: demo.nova.servers.get(
            server.id).status == 'ACTIVE')


def test_a_killed_agent_thaws_on_restart(agent, server, token):
    uuid, guest = server
    status, _ = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                           token=token, budget_s=60)
    assert status == 201
    agent.stop(signal.SIGKILL)
    assert guest.command('guest-fsfreeze-status') == 'frozen'
    agent.start()
    assert guest.command('guest-fsfreeze-status') == 'thawed'


def power_state(guest):
    return subprocess.run(
        ['virsh', '-c', 'qemu:///system', 'domstate', guest.domain],
        capture_output=True, text=True, check=True).stdout.strip()


def test_a_killed_agent_resumes_its_pause_at_restart(agent, server, token):
    uuid, guest = server
    status, body = agent.call('POST', '/v1/servers/%s/pause' % uuid,
                              token=token, budget_s=60)
    assert status == 201, body
    agent.stop(signal.SIGKILL)
    try:
        assert power_state(guest) == 'paused'
        started = time.monotonic()
        agent.start()
        # Released before the agent listens: running by the first answer.
        assert power_state(guest) == 'running'
        assert time.monotonic() - started < 10
        status, late = agent.call('POST', '/v1/servers/%s/resume' % uuid,
                                  token=token, lease=body['lease']['id'])
        assert (status, late['lease']['released_by']) == (409, 'restart')
    finally:
        if power_state(guest) == 'paused':
            subprocess.run(['virsh', '-c', 'qemu:///system', 'resume',
                            guest.domain], check=False)
        guest.wait_until_answering(timeout_s=30)


def test_a_second_agent_exits_1_and_leaves_the_freeze_alone(
        agent, server, token):
    uuid, guest = server
    status, body = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                              token=token, budget_s=30)
    assert status == 201, body
    try:
        second = agent.run_another()
        assert second.returncode == 1
        assert guest.command('guest-fsfreeze-status') == 'frozen'
        assert 'Another snapshot-dashboard-agent (pid %d) holds' % (
            agent.process.pid) in agent.log_file.read_text()
    finally:
        status, thawed = agent.call('POST', '/v1/servers/%s/thaw' % uuid,
                                    token=token, lease=body['lease']['id'])
    assert (status, thawed['lease']['released_by']) == (200, 'caller')
    assert guest.command('guest-fsfreeze-status') == 'thawed'


def test_sigterm_thaws_what_the_agent_froze(agent, server, token):
    uuid, guest = server
    agent.call('POST', '/v1/servers/%s/freeze' % uuid, token=token,
               budget_s=60)
    agent.stop(signal.SIGTERM)
    try:
        assert guest.command('guest-fsfreeze-status') == 'thawed'
    finally:
        agent.start()


def test_a_hung_guest_agent_ends_thawed(agent, server, token):
    uuid, guest = server
    # Stop qemu-ga inside the guest for 8 s, a moment from now.
    guest.command('guest-exec', path='/bin/sh', arg=[
        '-c', 'sleep 1; kill -STOP $(pidof qemu-ga); sleep 8; '
        'kill -CONT $(pidof qemu-ga)'])
    time.sleep(2)
    status, _ = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                           token=token, budget_s=30)
    assert status == 409  # libvirt gave up after agent_timeout
    wait_for('the guest to answer thawed', lambda: _status(guest) ==
             'thawed', timeout_s=60, interval_s=1)
    time.sleep(5)
    assert _status(guest) == 'thawed'


def _status(guest):
    try:
        return guest.command('guest-fsfreeze-status', timeout_s=3)
    except RuntimeError:
        return None


# -- captures ---------------------------------------------------------------

def copied_counter(path, scratch):
    """The counter lines in a qcow2 copy of a drive, after checking the
    copy and its filesystem: qemu-img check, then e2fsck -fn on it raw."""
    subprocess.run(['qemu-img', 'check', str(path)], check=True,
                   capture_output=True)
    raw = scratch / (path.name + '.raw')
    subprocess.run(['qemu-img', 'convert', '-O', 'raw', str(path), str(raw)],
                   check=True, capture_output=True)
    fsck = subprocess.run(['e2fsck', '-fn', str(raw)], capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    out = subprocess.run(['debugfs', '-R', 'cat /counter', str(raw)],
                         capture_output=True, text=True, check=True).stdout
    raw.unlink()
    return [(int(n), float(t)) for n, t in
            (line.split() for line in out.splitlines() if line.strip())]


def wait_for_capture(agent, token, uuid, capture_id, states):
    return wait_for('capture %s' % capture_id, lambda: (
        lambda c: c if c['state'] in states else None)(agent.call(
            'GET', '/v1/servers/%s/captures/%s' % (uuid, capture_id),
            token=token)[1]['capture']), timeout_s=120, interval_s=0.2)


def test_a_capture_in_a_freeze_ends_at_the_last_line_before_it(
        agent, server, token, tmp_path):
    uuid, guest = server
    since = {device: counter_lines(guest, device)[-1][1]
             for device in ('vda', 'vdb')}
    status, body = agent.call('POST', '/v1/servers/%s/freeze' % uuid,
                              token=token, budget_s=30)
    assert status == 201
    lease = body['lease']['id']
    status, body = agent.call('POST', '/v1/servers/%s/captures' % uuid,
                              token=token, devices=['vda', 'vdb'],
                              lease=lease)
    assert status == 201, body
    capture = body['capture']
    assert capture['began_ms'] < 1000
    time.sleep(2)  # the writers wait out the freeze
    status, _ = agent.call('POST', '/v1/servers/%s/thaw' % uuid,
                           token=token, lease=lease)
    assert status == 200
    try:
        wait_for_capture(agent, token, uuid, capture['id'], {'copied'})
        time.sleep(1)
        for device in ('vda', 'vdb'):
            copy = agent.capture_dir / capture['id'] / ('%s.qcow2' % device)
            copied = copied_counter(copy, tmp_path)
            live = counter_lines(guest, device)
            # The copy is exactly the file as it was at the freeze: a prefix
            # of it with no freeze inside, cut where the freeze is. The
            # first line missing is the write that blocked at the freeze:
            # its time was read before the thaw, so the two-second hold lies
            # between the copy's last line and the line after that one.
            cut = len(copied)
            assert copied == live[:cut], device
            assert longest_gap(copied, since[device]) < 1.0, device
            assert live[cut + 1][1] - copied[-1][1] > 1.5, device
    finally:
        agent.call('DELETE', '/v1/servers/%s/captures/%s'
                   % (uuid, capture['id']), token=token)
    assert not (agent.capture_dir / capture['id']).exists()


def test_a_capture_outside_the_lease_is_refused(agent, server, token):
    uuid, _ = server
    status, body = agent.call('POST', '/v1/servers/%s/captures' % uuid,
                              token=token, devices=['vda'], lease='gone')
    assert status == 409
    assert list(agent.capture_dir.iterdir()) == []


def test_an_export_uploads_with_the_callers_token_then_removes_the_copy(
        agent, server, token, demo):
    uuid, _ = server
    status, body = agent.call('POST', '/v1/servers/%s/captures' % uuid,
                              token=token, devices=['vdb'])
    assert status == 201
    capture = body['capture']
    image = demo.glance.images.create(name='agent-export-test',
                                      disk_format='qcow2',
                                      container_format='bare')
    try:
        status, body = agent.call(
            'POST', '/v1/servers/%s/captures/%s/export' % (uuid,
                                                           capture['id']),
            token=token, images=[{'device': 'vdb', 'image': image['id']}])
        assert status == 202, body
        done = wait_for_capture(agent, token, uuid, capture['id'],
                                {'exported', 'failed'})
        assert done['state'] == 'exported', done
        assert done['exports']['vdb']['state'] == 'uploaded'
        uploaded = demo.glance.images.get(image['id'])
        assert uploaded['status'] == 'active'
        assert uploaded['owner'] == demo.project_id
        assert uploaded['size'] > 0
        assert not (agent.capture_dir / capture['id']).exists()
    finally:
        demo.glance.images.delete(image['id'])


@pytest.fixture(scope='module')
def admin_server(admin):
    """A server of the admin project, on the same host as demo's."""
    image = next(i for i in admin.glance.images.list()
                 if i['name'] == 'snapguest')
    flavor = admin.nova.flavors.find(name='snap.tiny-noeph')
    server = admin.nova.servers.create('admin-agent-test', image['id'],
                                       flavor.id, nics='none')
    try:
        wait_for('the admin server', lambda: admin.nova.servers.get(
            server.id).status == 'ACTIVE', timeout_s=300)
        yield server.id
    finally:
        admin.nova.servers.delete(server.id)
        wait_for('the admin server to go', lambda: not [
            s for s in admin.nova.servers.list() if s.id == server.id])


def test_a_demo_token_on_an_admin_project_server_is_403(
        agent, admin_server, token):
    for method, path, body in [
            ('GET', '', {}), ('POST', '/freeze', {'budget_s': 5}),
            ('POST', '/pause', {'budget_s': 5}),
            ('POST', '/captures', {'devices': ['vda']})]:
        status, _ = agent.call(method, '/v1/servers/%s%s'
                               % (admin_server, path), token=token, **body)
        assert status == 403, path
    assert list(agent.capture_dir.iterdir()) == []


def test_the_compute_host_is_found_with_the_service_credential(
        demo, cloud_config, server):
    from snapshot_dashboard.orchestration import agent as agent_module
    from tests.integration.conftest import _clients
    service = _clients(cloud_config, 'minicloud-service')
    template = 'http://{host}:9797'
    # Nova shows the host only to the service credential, not to demo.
    assert agent_module.AgentLocator(template).for_server(
        demo, server[0]) is None
    located = agent_module.AgentLocator(template, service).for_server(
        demo, server[0])
    host = service.nova.servers.get(server[0]).to_dict()[
        'OS-EXT-SRV-ATTR:host']
    assert located.url == 'http://%s:9797' % host
    # The call itself goes with demo's own token.
    assert located.session is demo.session
