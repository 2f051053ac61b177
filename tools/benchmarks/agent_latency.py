"""Freeze, capture, thaw, pause and resume through the agent, against the
raw calls; then whole snapshot sets and their freeze windows.

    .venv/bin/python tools/benchmarks/agent_latency.py [--rounds 20] [--sets 5]

Needs the mini-cloud up (its agent on 127.0.0.1:9797, the demo servers).
For each operation it prints the median and the worst of the raw libvirt
call on the guest of ``demo-image`` and of the same operation through the
agent's HTTP API with the demo user's token, and the agent's overhead (the
difference of the medians). ``capture`` is libvirt's ``backupBegin`` of the
root and ephemeral drives (the copy itself runs on after it returns).
Then it takes ``--sets`` application-consistent sets of ``demo-image``
(root, ephemeral, two volumes) through the orchestration and prints their
freeze windows, deleting each set. Prints figures; asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

import libvirt
import openstack.config
import openstack.connection
import requests

from snapshot_dashboard.agent import captures as captures_module
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets

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
    parser.add_argument('--sets', type=int, default=5)
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

    def agent(action, method='POST', **body):
        response = http.request(method, '%s/v1/servers/%s/%s'
                                % (AGENT, server.id, action),
                                json=body or None, timeout=30)
        response.raise_for_status()
        data = response.json()
        return data.get('lease') or data.get('capture')

    def no_job():
        while domain.jobStats().get('type', 0) != libvirt.VIR_DOMAIN_JOB_NONE:
            time.sleep(0.05)

    scratch = tempfile.mkdtemp(prefix='capture-bench-')
    targets = ['vda', 'vdb']
    every_disk = captures_module.disk_targets(domain.XMLDesc(0))

    def raw_capture():
        folder = tempfile.mkdtemp(dir=scratch)
        xml = captures_module.backup_xml(every_disk, set(targets), folder)
        return timed(lambda: domain.backupBegin(xml, None, 0))[0], folder

    def agent_capture(lease=None):
        ms, capture = timed(lambda: agent('captures', devices=targets,
                                          lease=lease))
        return ms, capture

    def agent_uncapture(capture):
        agent('captures/%s' % capture['id'], method='DELETE')
        no_job()

    raw = {'freeze': [], 'capture': [], 'thaw': [], 'pause': [],
           'resume': []}
    through = {op: [] for op in raw}
    windows = []
    for _ in range(args.rounds):
        # The same order as through the agent: the thaw while QEMU copies.
        raw['freeze'].append(timed(domain.fsFreeze)[0])
        ms, folder = raw_capture()
        raw['capture'].append(ms)
        raw['thaw'].append(timed(domain.fsThaw)[0])
        no_job()
        shutil.rmtree(folder)
        raw['pause'].append(timed(domain.suspend)[0])
        raw['resume'].append(timed(domain.resume)[0])
        ms, lease = timed(lambda: agent('freeze', budget_s=30))
        through['freeze'].append(ms)
        ms, capture = agent_capture(lease['id'])
        through['capture'].append(ms)
        ms, lease = timed(lambda lease=lease: agent('thaw',
                                                     lease=lease['id']))
        through['thaw'].append(ms)
        windows.append(lease['held_ms'])
        agent_uncapture(capture)
        ms, lease = timed(lambda: agent('pause', budget_s=30))
        through['pause'].append(ms)
        through['resume'].append(timed(
            lambda lease=lease: agent('resume', lease=lease['id']))[0])
        time.sleep(0.2)

    shutil.rmtree(scratch, ignore_errors=True)
    print('%d rounds on %s (2 filesystems, TCG guest)' % (args.rounds,
                                                           server.name))
    print('%-8s %22s %22s %10s' % ('', 'raw libvirt median/max',
                                   'agent median/max', 'overhead'))
    for op in raw:
        raw_median, raw_max = summary(raw[op])
        agent_median, agent_max = summary(through[op])
        print('%-8s %12.1f /%6.1f ms %12.1f /%6.1f ms %7.1f ms' % (
            op, raw_median, raw_max, agent_median, agent_max,
            agent_median - raw_median))
    print('freeze held (agent lease: freeze, capture, thaw calls): median '
          '%d ms, max %d ms' % summary(windows))

    clients = clients_module.Clients(demo)
    locator = agent_module.AgentLocator(AGENT)
    set_windows, totals = [], []
    for _ in range(args.sets):
        started = time.perf_counter()
        snapshot_set = run.create_snapshot_set(
            clients, server.id, consistency='application', wait=True,
            agent_locator=locator)
        totals.append((time.perf_counter() - started) * 1000)
        set_windows.append(snapshot_set.window_ms)
        sets.delete_set(clients, snapshot_set.id)
        time.sleep(1)
    if args.sets:
        print('%d application-consistent sets of %s (%s): freeze window '
              'median %d ms, max %d ms; whole run with uploads median '
              '%d ms' % (args.sets, server.name, ', '.join(
                  '%s by %s' % (d.name, d.captured_by)
                  for d in snapshot_set.drives),
                  *summary(set_windows), statistics.median(totals)))


if __name__ == '__main__':
    main()
