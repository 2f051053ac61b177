"""Freeze, thaw, pause and resume through the agent, against the raw calls.

    .venv/bin/python tools/benchmarks/agent_latency.py [--rounds 20]

Needs the mini-cloud up (its agent on 127.0.0.1:9797, the demo servers).
For each operation it prints the median and the worst of the raw libvirt
call on the guest of ``demo-image`` and of the same operation through the
agent's HTTP API with the demo user's token, and the agent's overhead (the
difference of the medians). Prints figures; asserts nothing.
"""

import argparse
import os
import statistics
import time

import libvirt
import openstack.config
import openstack.connection
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
AGENT = 'http://127.0.0.1:9797'


def timed(call):
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def summary(samples):
    return statistics.median(samples), max(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args()

    config = openstack.config.OpenStackConfig(config_files=[os.path.join(
        REPO, '.state', 'minicloud', 'clouds.yaml')])
    demo = config.get_one('minicloud-demo').get_session()
    admin = openstack.connection.Connection(
        config=config.get_one('minicloud-admin'))
    server = next(s for s in admin.compute.servers(all_projects=True)
                  if s.name == 'demo-image')
    domain = libvirt.open('qemu:///system').lookupByName(
        server.instance_name)
    domain.agentSetResponseTimeout(5, 0)
    token = demo.get_token()
    http = requests.Session()
    http.headers['X-Auth-Token'] = token

    def agent(action, **body):
        response = http.post('%s/v1/servers/%s/%s' % (AGENT, server.id,
                                                       action),
                             json=body, timeout=30)
        response.raise_for_status()
        return response.json()['lease']

    raw = {'freeze': [], 'thaw': [], 'pause': [], 'resume': []}
    through = {'freeze': [], 'thaw': [], 'pause': [], 'resume': []}
    windows = []
    for _ in range(args.rounds):
        raw['freeze'].append(timed(domain.fsFreeze)[0])
        raw['thaw'].append(timed(domain.fsThaw)[0])
        raw['pause'].append(timed(domain.suspend)[0])
        raw['resume'].append(timed(domain.resume)[0])
        ms, lease = timed(lambda: agent('freeze', budget_s=30))
        through['freeze'].append(ms)
        ms, lease = timed(lambda lease=lease: agent('thaw',
                                                     lease=lease['id']))
        through['thaw'].append(ms)
        windows.append(lease['held_ms'])
        ms, lease = timed(lambda: agent('pause', budget_s=30))
        through['pause'].append(ms)
        through['resume'].append(timed(
            lambda lease=lease: agent('resume', lease=lease['id']))[0])
        time.sleep(0.2)

    print('%d rounds on %s (2 filesystems, TCG guest)' % (args.rounds,
                                                           server.name))
    print('%-8s %22s %22s %10s' % ('', 'raw libvirt median/max',
                                   'agent median/max', 'overhead'))
    for op in ('freeze', 'thaw', 'pause', 'resume'):
        raw_median, raw_max = summary(raw[op])
        agent_median, agent_max = summary(through[op])
        print('%-8s %12.1f /%6.1f ms %12.1f /%6.1f ms %7.1f ms' % (
            op, raw_median, raw_max, agent_median, agent_max,
            agent_median - raw_median))
    print('freeze held (agent lease, freeze+thaw calls): median %d ms, '
          'max %d ms' % summary(windows))


if __name__ == '__main__':
    main()
