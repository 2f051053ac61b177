"""The API calls behind the snapshot workflow's submit, before and after the
pre-flight moved into the core.

    .venv/bin/python tools/benchmarks/preflight_calls.py [--server NAME]

Needs the mini-cloud up. Submitting the workflow builds the workflow again
(its pre-flight) and checks the ticked drives. Until the pre-flight moved
into the core the check loaded the plan a second time
and read the quotas again (``plan.load_plan(..., selection)``, without the
capturers' reasons, then ``check_quotas``); now
it checks against the same reading (``Preflight.check_selection``). Both
are counted here on the same server in the same run, each with a fresh
session as a Horizon request has, as the demo user, with the mini-cloud's
agent. Prints figures; asserts nothing.
"""

import argparse
import collections
import os
import time

from keystoneauth1 import session as ks_session
import openstack.config

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import preflight

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
AGENT_URL = 'http://127.0.0.1:9797'


def counted(config, submit):
    """Every request ``submit(clients)`` sends, by method and path, and
    the time it took in ms."""
    calls = collections.Counter()
    original = ks_session.Session.request

    def counting(self, url, method, **kwargs):
        path = url.split('?')[0].split(':', 2)[-1]
        calls['%s %s' % (method, path.split('/', 1)[-1])] += 1
        return original(self, url, method, **kwargs)

    ks_session.Session.request = counting
    try:
        clients = clients_module.Clients(
            config.get_one('minicloud-demo').get_session())
        started = time.perf_counter()
        submit(clients)
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        ks_session.Session.request = original
    return calls, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--server', default='demo-image')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    config = openstack.config.OpenStackConfig(config_files=[os.path.join(
        REPO, '.state', 'minicloud', 'clouds.yaml')])
    demo = clients_module.Clients(config.get_one(
        'minicloud-demo').get_session())
    server = demo.nova.servers.find(name=args.server)
    locator = agent_module.AgentLocator(AGENT_URL)
    chosen = ['/dev/vda']

    def before(clients):
        preflight.check(clients, server.id, locator)
        plan = plan_module.load_plan(clients, server.id, selection=chosen)
        preflight.check_quotas(clients, plan)

    def after(clients):
        preflight.check(clients, server.id, locator).check_selection(chosen)

    print('submit of the workflow for %s, %d rounds each, alternating'
          % (args.server, args.rounds))
    figures = {'before': [], 'after': []}
    for _ in range(args.rounds):
        for name, submit in (('before', before), ('after', after)):
            calls, elapsed = counted(config, submit)
            figures[name].append((calls, elapsed))
    for name, runs in figures.items():
        calls = runs[-1][0]
        times = sorted(elapsed for _, elapsed in runs)
        print('%-6s %2d HTTP requests, median %4.0f ms (%s)' % (
            name, sum(calls.values()), times[len(times) // 2],
            ', '.join('%s x%d' % item for item in sorted(calls.items()))))


if __name__ == '__main__':
    main()
