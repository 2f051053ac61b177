"""Sets taken through the REST API (queued, taken by the worker) beside
sets taken in-process (the orchestration core in this process, as the
CLI's --in-process does), on the same server in the same run,
alternating.

    .venv/bin/python tools/benchmarks/service_vs_in_process.py \
        [--server demo-volume] [--rounds 3] [--consistency application]

Needs the mini-cloud up (its API, worker and agent). Prints, per path, the
window each set reports (``window_ms``) and the time until the set is
usable as its caller sees it (for the API: from the POST until the run
ends, polled every 0.2 s). Every set is deleted after. Asserts nothing.
"""

import argparse
import os
import statistics
import time

import openstack.config

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
AGENT_URL = 'http://127.0.0.1:9797'


def through_service(service, server_id, consistency):
    started = time.perf_counter()
    run = service.create_run(server_id, consistency=consistency)
    while run['state'] not in ('succeeded', 'failed'):
        time.sleep(0.2)
        run = service.get_run(run['id'])
    elapsed = time.perf_counter() - started
    if run['state'] != 'succeeded':
        raise RuntimeError(run['error'])
    return run['set_id'], run['window_ms'], elapsed


def in_process(clients, server_id, consistency):
    started = time.perf_counter()
    snapshot_set = run_module.create_snapshot_set(
        clients, server_id, consistency=consistency, wait=True,
        agent_locator=agent_module.AgentLocator(AGENT_URL))
    return (snapshot_set.id, snapshot_set.window_ms,
            time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--server', default='demo-volume')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--consistency', default='application')
    args = parser.parse_args()
    region = openstack.config.OpenStackConfig(config_files=[os.path.join(
        REPO, '.state', 'minicloud', 'clouds.yaml')]).get_one(
            'minicloud-demo')
    clients = clients_module.Clients(region.get_session())
    service = service_client.ServiceClient(clients.session)
    server = clients.nova.servers.find(name=args.server)
    figures = {'service': [], 'in-process': []}
    for _ in range(args.rounds):
        for name, take in (('service', lambda: through_service(
                service, server.id, args.consistency)),
                ('in-process', lambda: in_process(
                    clients, server.id, args.consistency))):
            set_id, window_ms, elapsed = take()
            figures[name].append((window_ms, elapsed))
            sets.delete_set(clients, set_id)
            time.sleep(2)
    print('%s, %s, %d rounds, alternating' % (args.server, args.consistency,
                                             args.rounds))
    for name, rows in figures.items():
        print('%-10s window median %4d ms (%s); usable after median %.1f s'
              % (name, statistics.median(w for w, _ in rows),
                 ', '.join('%d' % w for w, _ in rows),
                 statistics.median(e for _, e in rows)))


if __name__ == '__main__':
    main()
