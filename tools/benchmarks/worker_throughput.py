"""The worker at scale: several worker processes on the mini-cloud's
MariaDB taking a queue of runs over a handful of servers.

    .venv/bin/python tools/benchmarks/worker_throughput.py \
        [--workers 4] [--runs 100] [--servers 10]

Needs the mini-cloud up. Boots ``--servers`` volume-backed servers (1 GB
root volume, no data volume) as the demo user (raising the demo project's
quotas for the run and setting them back), starts ``--workers`` - 1 more
worker processes beside the mini-cloud's own (same command, same
settings), queues ``--runs`` runs through the REST API round-robin over
the servers (application-consistent, every drive), and waits for all of
them. Prints the runs per minute (first queued to last finished), the
queue wait (``started_at - created_at``) p50 and p95, how the runs spread
over the worker processes, and every pair of runs that overlapped on one
server (there must be none). Stops its workers, deletes every set, server
and volume it made. Asserts nothing.
"""

import argparse
import collections
import datetime
import os
import signal
import statistics
import subprocess
import sys
import time

import benchcloud
from benchcloud import wait

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import sets

sys.path.insert(0, os.path.join(benchcloud.REPO, 'tools', 'minicloud'))
import minicloud  # noqa: E402


def boot_all(clients, count):
    servers = [benchcloud.create_server(clients, 'bench-workers-%d' % n,
                                        volume_backed=True).id
               for n in range(count)]
    agent = agent_module.AgentClient(clients.session, benchcloud.AGENT)
    for server_id in servers:
        wait('server %s active' % server_id, lambda s=server_id:
             benchcloud.settled(clients, s, 'ACTIVE'), timeout_s=900)
        wait('the guest agent of %s' % server_id, lambda s=server_id: (
            agent_module.probe(agent, s) or {}).get('guest_agent'),
            timeout_s=300)
    return servers


def start_workers(count):
    """``count`` more worker processes as the mini-cloud runs its own."""
    cloud = minicloud.MiniCloud(benchcloud.STATE)
    command, environment = cloud.services()['snapshot-worker']
    log = open(os.path.join(benchcloud.STATE, 'log',
                            'bench-workers.log'), 'a')
    return [subprocess.Popen(command, env=dict(os.environ, **environment),
                             stdout=log, stderr=log,
                             start_new_session=True)
            for _ in range(count)]


def stop_workers(processes):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def parse(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def workers_of(run_ids):
    """The worker process that took each run, from the runs' database."""
    cloud = minicloud.MiniCloud(benchcloud.STATE)
    environment = cloud.django_env()
    os.environ['DJANGO_SETTINGS_MODULE'] = environment[
        'DJANGO_SETTINGS_MODULE']
    sys.path.insert(0, environment['PYTHONPATH'])
    import django
    django.setup()
    from snapshot_dashboard import models
    return dict(models.SnapshotRun.objects.filter(
        pk__in=list(run_ids)).values_list('pk', 'worker'))


def report(runs):
    queued = [parse(r['created_at']) for r in runs]
    started = [parse(r['started_at']) for r in runs]
    finished = [parse(r['finished_at']) for r in runs]
    span = (max(finished) - min(queued)).total_seconds()
    waits = [(s - q).total_seconds() for s, q in zip(started, queued,
                                                     strict=True)]
    took = [(f - s).total_seconds() for f, s in zip(finished, started,
                                                    strict=True)]
    states = collections.Counter(r['state'] for r in runs)
    print('%d runs (%s) in %.0f s: %.1f runs per minute' % (
        len(runs), ', '.join('%s %d' % kv for kv in sorted(states.items())),
        span, len(runs) / span * 60))
    print('queue wait p50 %.1f s, p95 %.1f s; a run took p50 %.1f s, '
          'p95 %.1f s' % (statistics.median(waits), percentile(waits, 0.95),
                          statistics.median(took), percentile(took, 0.95)))
    by_worker = collections.Counter(workers_of(r['id'] for r in runs)
                                    .values())
    print('runs per worker process: %s' % ', '.join(
        str(n) for n in sorted(by_worker.values(), reverse=True)))
    overlaps = []
    by_server = collections.defaultdict(list)
    for run in runs:
        by_server[run['server_id']].append(
            (parse(run['started_at']), parse(run['finished_at']), run['id']))
    for spans in by_server.values():
        spans.sort()
        for (_, end, first), (begin, _, second) in zip(spans, spans[1:],
                                                      strict=False):
            if begin < end:
                overlaps.append((first, second))
    print('runs overlapping on one server: %d%s' % (
        len(overlaps), ' %s' % overlaps if overlaps else ''))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--runs', type=int, default=100)
    parser.add_argument('--servers', type=int, default=10)
    args = parser.parse_args()
    clients = benchcloud.clients()
    admin = benchcloud.clients('minicloud-admin')
    project = clients.project_id
    volume_quotas = admin.cinder.quotas.get(project).to_dict()
    compute_quotas = admin.nova.quotas.get(project).to_dict()
    admin.cinder.quotas.update(project, volumes=args.servers + 20,
                               snapshots=args.runs + 20)
    admin.nova.quotas.update(project, instances=args.servers + 10,
                             cores=args.servers + 20)
    service = service_client.ServiceClient(clients.session)
    servers, workers, runs = [], [], []
    try:
        servers = boot_all(clients, args.servers)
        workers = start_workers(args.workers - 1)
        time.sleep(5)  # the workers connect
        queued = [service.create_run(servers[n % len(servers)],
                                     consistency='application')['id']
                  for n in range(args.runs)]
        ended = {}

        def all_ended():
            for run in service.list_runs(limit=1000):
                if run['id'] in queued and run['state'] in ('succeeded',
                                                            'failed'):
                    ended[run['id']] = run
            return len(ended) == len(queued)
        wait('every run', all_ended, timeout_s=3600, interval_s=2)
        runs = [service.get_run(run_id) for run_id in queued]
        report(runs)
    finally:
        stop_workers(workers)
        for run in runs:
            if run.get('set_id'):
                try:
                    sets.delete_set(clients, run['set_id'])
                except errors.SetNotFound:
                    pass
        for server_id in servers:
            clients.nova.servers.delete(server_id)
        wait('servers gone', lambda: not set(servers) & {
            s.id for s in clients.nova.servers.list()})
        admin.cinder.quotas.update(project,
                                   volumes=volume_quotas['volumes'],
                                   snapshots=volume_quotas['snapshots'])
        admin.nova.quotas.update(project,
                                 instances=compute_quotas['instances'],
                                 cores=compute_quotas['cores'])


if __name__ == '__main__':
    main()
