"""The agent's process: one per state directory, and a failed start is
exit status 1 (libvirt's test driver stands in for the host)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from snapshot_dashboard.agent import state

pytestmark = pytest.mark.slow


def write_config(folder, port):
    config = folder / 'agent.conf'
    config.write_text('\n'.join([
        '[DEFAULT]', 'log_file = %s' % (folder / 'agent.log'),
        '[agent]', 'bind_host = 127.0.0.1', 'bind_port = %d' % port,
        'state_dir = %s' % (folder / 'state'),
        'capture_dir = %s' % (folder / 'state' / 'captures'),
        '[libvirt]', 'connection_uri = test:///default', '']))
    return config


def run_agent(config):
    return subprocess.run(
        [sys.executable, '-m', 'snapshot_dashboard.agent.cmd',
         '--config-file', str(config)],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def listening():
    """A port someone else listens on."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_second_agent_exits_1_and_touches_nothing(tmp_path, listening):
    config = write_config(tmp_path, listening)
    leftover = tmp_path / 'state' / 'captures' / 'copy-in-progress'
    leftover.mkdir(parents=True)
    state.LeaseFile(str(tmp_path / 'state')).add({
        'id': 'lease-1', 'server': 'server-1', 'kind': 'pause',
        'budget_s': 30, 'taken_at': 1000.0, 'expires_at': 1030.0})
    leases_before = (tmp_path / 'state' / state.LEASES_FILE).read_text()
    running = state.HostLock(str(tmp_path / 'state'))
    assert running.acquire()
    try:
        result = run_agent(config)
    finally:
        running.release()
    assert result.returncode == 1
    log = (tmp_path / 'agent.log').read_text()
    assert ('Another snapshot-dashboard-agent (pid %d) holds' % os.getpid()
            in log)
    assert 'touches nothing' in log
    # The running agent's lease and capture are as they were.
    assert (tmp_path / 'state' / state.LEASES_FILE).read_text() == (
        leases_before)
    assert json.loads(leases_before)['leases'][0]['id'] == 'lease-1'
    assert leftover.is_dir()


def test_an_agent_that_cannot_listen_exits_1(tmp_path, listening):
    result = run_agent(write_config(tmp_path, listening))
    assert result.returncode == 1
    assert 'Cannot listen on 127.0.0.1:%d' % listening in (
        tmp_path / 'agent.log').read_text()
