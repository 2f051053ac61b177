"""Figures of the mini-cloud: warm bring-up, memory, time to a guest agent.

    .state/minicloud/venv/bin/python tools/minicloud/benchmark.py

Stops and starts the cloud (warm), sums the memory of every process it
runs, then boots one server of the test guest and times how long until its
QEMU guest agent answers, and deletes it. Prints the figures; asserts
nothing. The fresh bring-up is printed by ``minicloud up`` itself.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import minicloud  # noqa: E402


def rss_kb(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def qemu_pids():
    result = subprocess.run(['pgrep', '-f', 'qemu-system'],
                            capture_output=True, text=True, check=False)
    return [int(p) for p in result.stdout.split()]


def agent_answers(domain):
    ping = json.dumps({'execute': 'guest-ping'})
    return subprocess.run(
        ['virsh', '-c', 'qemu:///system', 'qemu-agent-command', domain, ping,
         '--timeout', '2'], capture_output=True, check=False).returncode == 0


def main():
    cloud = minicloud.MiniCloud(os.path.join(minicloud.REPO, '.state',
                                             'minicloud'))
    cloud.up()
    cloud.down()
    started = time.monotonic()
    cloud.up()
    warm_s = time.monotonic() - started
    # Nova restarts the seeded guests when nova-compute comes back.
    cloud.wait_for('a seeded guest agent', lambda: any(
        map(agent_answers, cloud.guest_domains())), timeout_s=300,
        interval_s=0.2)
    first_agent_s = time.monotonic() - started

    services = [cloud.pid_of(name) for name in cloud.services()]
    control = minicloud.descendants([p for p in services if p]
                                    + cloud.helper_pids())
    control -= set(qemu_pids())
    control_mb = sum(map(rss_kb, control)) / 1024
    guests = qemu_pids()
    guest_mb = sum(map(rss_kb, guests)) / 1024

    started = time.monotonic()
    created = cloud.openstack_json(
        'minicloud-demo', '--os-compute-api-version', '2.79', 'server',
        'create', '--flavor', minicloud.FLAVOR + '-noeph', '--image',
        minicloud.GUEST_IMAGE, '--nic', 'none', 'benchmark-guest')

    def active_domain():
        server = cloud.openstack_json('minicloud-admin', 'server', 'show',
                                      created['id'])
        if server['status'] == 'ACTIVE':
            return server['OS-EXT-SRV-ATTR:instance_name']
        return None

    domain = cloud.wait_for('the new server', active_domain)
    cloud.wait_for('the new guest agent', lambda: agent_answers(domain),
                   timeout_s=300, interval_s=0.2)
    agent_s = time.monotonic() - started
    cloud.openstack('minicloud-demo', 'server', 'delete', '--wait',
                    created['id'])

    print('warm bring-up (down, then up):          %6.1f s' % warm_s)
    print('warm up -> first seeded guest answers:  %6.1f s' % first_agent_s)
    print('server create -> its guest agent answers: %4.1f s' % agent_s)
    print('control plane memory (RSS, %3d procs):  %6.0f MB'
          % (len(control), control_mb))
    print('guests memory (RSS, %d guests):           %6.0f MB'
          % (len(guests), guest_mb))


if __name__ == '__main__':
    main()
