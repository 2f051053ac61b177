"""Fixtures of the integration tests: the mini-cloud, up for real.

``tools/minicloud/minicloud up`` is idempotent: the first test brings the
cloud up (or finds it running) and every test acts on its real services
and real guests.
"""

import base64
import json
import os
import subprocess
import sys
import time

import openstack.config
import pytest

from snapshot_dashboard.orchestration import clients as clients_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MINICLOUD = os.path.join(ROOT, 'tools', 'minicloud', 'minicloud')


def pytest_collection_modifyitems(items):
    for item in items:
        if 'tests/integration/' in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope='session')
def clouds_yaml():
    result = subprocess.run([MINICLOUD, 'up'], capture_output=True,
                            text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope='session')
def cloud_config(clouds_yaml):
    return openstack.config.OpenStackConfig(config_files=[clouds_yaml])


def _clients(cloud_config, name):
    region = cloud_config.get_one(name)
    return clients_module.Clients(region.get_session(),
                                  region_name=region.region_name)


@pytest.fixture(scope='session')
def demo(cloud_config):
    return _clients(cloud_config, 'minicloud-demo')


@pytest.fixture(scope='session')
def demo2(cloud_config):
    return _clients(cloud_config, 'minicloud-demo2')


@pytest.fixture(scope='session')
def admin(cloud_config):
    return _clients(cloud_config, 'minicloud-admin')


@pytest.fixture(scope='session')
def openstack_cli(clouds_yaml):
    """Run ``openstack --os-cloud minicloud-<cloud> ...``; JSON out."""
    binary = os.path.join(os.path.dirname(sys.executable), 'openstack')
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=clouds_yaml)
    # --in-process runs name their agent themselves, or have none.
    env.pop('SNAPSHOT_DASHBOARD_AGENT_URL', None)

    def run(cloud, *args, check=True):
        result = subprocess.run(
            [binary, '--os-cloud', 'minicloud-' + cloud, *args],
            capture_output=True, text=True, env=env, timeout=900,
            check=False)
        if check:
            assert result.returncode == 0, result.stderr[-4000:]
        return result

    return run


def server_by_name(clients, name):
    (server,) = [s for s in clients.nova.servers.list() if s.name == name]
    return server


def wait_for(what, check, timeout_s=300, interval_s=1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError('timed out waiting for %s' % what)


class Guest:
    """A guest's QEMU agent, reached through libvirt on this host."""

    def __init__(self, admin, server_id):
        server = admin.nova.servers.get(server_id).to_dict()
        self.domain = server['OS-EXT-SRV-ATTR:instance_name']

    def command(self, execute, timeout_s=10, **arguments):
        message = {'execute': execute}
        if arguments:
            message['arguments'] = arguments
        result = subprocess.run(
            ['virsh', '-c', 'qemu:///system', 'qemu-agent-command',
             self.domain, json.dumps(message), '--timeout', str(timeout_s)],
            capture_output=True, text=True, timeout=timeout_s + 30,
            check=False)
        if result.returncode:
            raise RuntimeError(result.stderr.strip())
        return json.loads(result.stdout)['return']

    def wait_until_answering(self, timeout_s=300):
        def pings():
            try:
                self.command('guest-ping', timeout_s=5)
                return True
            except RuntimeError:
                return False
        wait_for('the guest agent of %s' % self.domain, pings, timeout_s)

    def shell(self, script):
        """Run a busybox shell script in the guest; its standard output."""
        pid = self.command('guest-exec', path='/bin/sh',
                           arg=['-c', script], **{'capture-output': True})
        status = wait_for('guest-exec', lambda: (lambda s: s if s['exited']
                          else None)(self.command('guest-exec-status',
                                                  pid=pid['pid'])), 60, 0.2)
        assert status['exitcode'] == 0, status
        return base64.b64decode(status.get('out-data', '')).decode()


def delete_server_and_its_volumes(clients, server_id):
    """Delete a server booted from a set, then the volumes Nova made for it
    from the set's snapshots (they outlive it: delete_on_termination is
    false, as in Nova's own snapshots)."""
    volume_ids = [a.volumeId for a in
                  clients.nova.volumes.get_server_volumes(server_id)]
    clients.nova.servers.delete(server_id)
    wait_for('server %s to go' % server_id, lambda: not [
        s for s in clients.nova.servers.list() if s.id == server_id])
    for volume_id in volume_ids:
        wait_for('volume %s detached' % volume_id, lambda v=volume_id: (
            clients.cinder.volumes.get(v).status == 'available'))
        clients.cinder.volumes.delete(volume_id)
