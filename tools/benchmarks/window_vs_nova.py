"""The freeze window at every number of drives: Nova's createImage against
this project's set, on the same server in the same run, alternating.

    .venv/bin/python tools/benchmarks/window_vs_nova.py \
        [--kinds volume,image] [--counts 1,2,4,8,16] [--latencies 0,0.5] \
        [--rounds 3]

Needs the mini-cloud up. Boots one server per kind as the demo user
(volume-backed: a 1 GB root volume; image-backed: 1 GB root and 1 GB
ephemeral), and attaches 1 GB data volumes to it, more for each count.
For each count, each snapshot latency of the mini-cloud's Cinder (set
through its ``snapshot-latency-s`` switch, no restart) and each round, it
takes, in turn (who goes first alternates):

- Nova's createImage (Nova quiesces through the guest agent, snapshots
  the volumes one by one, thaws once none is ``creating``; of an
  image-backed server it copies only the root disk);
- a set of every drive through the orchestration core, in this process,
  application-consistent (``create_snapshot_set(wait=True)``);
- with ``--service``, the same set through the REST API and its worker
  (as the CLI takes it): its usable time counts from the POST to the run's
  end as polled every 0.1 s, so it includes the queue.

Figures, medians over the rounds, in seconds:

- guest: the window the guest lived, read from the log its qemu-ga
  writes on the serial console with the guest's clock: from reading the
  ``guest-fsfreeze-freeze`` request to enabling that command again after
  the thaw. Neither tool's own account is trusted;
- self: the window the set reports (``window_ms``); Nova reports none;
- usable: from the call to a usable result, in this process: for Nova,
  its image active and every snapshot it maps available; for ours, the
  call returning with the set usable;
- floor: a raw freeze and thaw through the compute-side agent with
  nothing between (as the guest saw it), plus the slowest single Cinder
  snapshot taken alone on the same backend (create to ``available``,
  polled every 20 ms);
- N snaps: every attached volume's snapshot (a volume-backed root's too)
  begun at once with no freeze, by plain threads (create to all
  ``available``, polled every 20 ms with one listing): what Cinder alone
  needs for N snapshots, whoever asks.

Raises the demo project's Cinder quotas for the run and sets them back.
Deletes everything it made. Asserts nothing.
"""

import argparse
import collections
import glob
import json
import os
import statistics
import time
import uuid

import benchcloud
from benchcloud import wait

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module

LATENCY_SWITCH = os.path.join(benchcloud.STATE, 'data', 'cinder', 'volumes',
                              'snapshot-latency-s')
FREEZE_READ = b'"execute":"guest-fsfreeze-freeze"'
FREEZE_ENABLED = b'enabling command: guest-fsfreeze-freeze\r'


class GuestLog:
    """The serial console log of a server: the windows its qemu-ga lived
    since ``mark``. The serial line is slow: the log lags the guest."""

    def __init__(self, server_id):
        self.path = glob.glob(os.path.join(
            benchcloud.STATE, 'data', 'nova', 'instances', server_id,
            'console.log'))[0]
        self.offset = 0

    def mark(self):
        self.offset = os.path.getsize(self.path)

    def windows(self, count=1, timeout_s=30):
        """The next ``count`` windows after the mark, in seconds."""
        def found():
            with open(self.path, 'rb') as f:
                f.seek(self.offset)
                lines = f.read().splitlines()
            spans, began = [], None
            for line in lines:
                stamp = line.split(b':', 1)[0]
                if FREEZE_READ in line:
                    began = _guest_time(stamp)
                elif (began is not None and (line + b'\r').endswith(
                        FREEZE_ENABLED)):
                    spans.append(_guest_time(stamp) - began)
                    began = None
            return spans if len(spans) >= count else None
        return wait('the guest log of its window', found,
                    timeout_s=timeout_s, interval_s=0.5)


def _guest_time(stamp):
    # qemu-ga writes seconds and microseconds unpadded: "%lu.%lu".
    seconds, micros = stamp.split(b'.')
    return int(seconds) + int(micros) / 1e6


def boot(clients, kind):
    return benchcloud.boot(clients, 'bench-window-%s-%s' % (
        kind, uuid.uuid4().hex[:6]), kind == 'volume')


def attach_up_to(clients, server_id, count, volumes):
    """Data volumes attached until ``count`` are; ``volumes`` lists them."""
    while len(volumes) < count:
        volume = clients.cinder.volumes.create(
            1, name='bench-window data %d' % len(volumes))
        volumes.append(volume.id)
        wait('volume', lambda v=volume.id: clients.cinder.volumes.get(
            v).status == 'available')
        clients.nova.volumes.create_server_volume(server_id, volume.id)
        wait('volume attached', lambda v=volume.id: clients.cinder.volumes
             .get(v).status == 'in-use')
    # The guest mounts a new drive within its writer's 2 s rescan.
    time.sleep(3)


def guest_agent_up(agent, server_id):
    return wait('the guest agent', lambda: (agent_module.probe(
        agent, server_id) or {}).get('guest_agent'), timeout_s=120)


def nova_path(clients, server_id):
    """Nova's createImage: seconds until its image is active and every
    snapshot it maps is available; what it made, to delete."""
    began = time.perf_counter()
    image_id = clients.nova.servers.create_image(
        server_id, 'bench-window nova %s' % uuid.uuid4().hex[:6])
    snapshot_ids = []

    def usable():
        image = clients.glance.images.get(image_id)
        if image['status'] in ('killed', 'deleted'):
            raise SystemExit('Nova could not snapshot %s' % server_id)
        if image['status'] != 'active':
            return False
        snapshot_ids[:] = [m['snapshot_id'] for m in json.loads(
            image.get('block_device_mapping') or '[]')
            if m.get('snapshot_id')]
        return all(clients.cinder.volume_snapshots.get(s).status
                   == 'available' for s in snapshot_ids)
    wait('Nova\'s image', usable, interval_s=0.05)
    took = time.perf_counter() - began
    # Nova thaws once no snapshot is creating: the server settles after.
    wait('Nova\'s task', lambda: benchcloud.settled(clients, server_id,
                                                    'ACTIVE'),
         interval_s=0.2)
    return took, None, (image_id, snapshot_ids)


def our_path(clients, server_id, locator):
    began = time.perf_counter()
    snapshot_set = run.create_snapshot_set(
        clients, server_id, consistency=window_module.APPLICATION,
        wait=True, agent_locator=locator)
    took = time.perf_counter() - began
    return took, snapshot_set.window_ms / 1000.0, snapshot_set.id


def service_path(service, server_id):
    began = time.perf_counter()
    taken = service.create_run(
        server_id, consistency=window_module.APPLICATION)
    while taken['state'] not in ('succeeded', 'failed'):
        time.sleep(0.1)
        taken = service.get_run(taken['id'])
    took = time.perf_counter() - began
    if taken['state'] != 'succeeded':
        raise SystemExit('The run failed: %s' % taken['error'])
    return took, taken['window_ms'] / 1000.0, taken['set_id']


def remove_nova(clients, made):
    image_id, snapshot_ids = made
    clients.glance.images.delete(image_id)
    for snapshot_id in snapshot_ids:
        clients.cinder.volume_snapshots.delete(snapshot_id)
    wait('Nova\'s snapshots gone', lambda: not set(snapshot_ids) & {
        s.id for s in clients.cinder.volume_snapshots.list()})


def remove_ours(clients, set_id):
    sets.delete_set(clients, set_id)
    wait('the set\'s snapshots gone', lambda: not [
        s for s in clients.cinder.volume_snapshots.list()
        if s.status == 'deleting'])


def floor(clients, agent, server_id, log, volume_id):
    """A raw freeze and thaw as the guest saw it, and one snapshot alone
    (create to available), in seconds."""
    log.mark()
    lease = agent.freeze(server_id, 10)
    agent.thaw(server_id, lease['id'])
    raw = log.windows()[0]
    began = time.perf_counter()
    snapshot = clients.cinder.volume_snapshots.create(
        volume_id, force=True, name='bench-window alone')
    wait('the snapshot alone', lambda: clients.cinder.volume_snapshots.get(
        snapshot.id).status == 'available', interval_s=0.02)
    alone = time.perf_counter() - began
    clients.cinder.volume_snapshots.delete(snapshot.id)
    wait('the snapshot alone gone', lambda: snapshot.id not in {
        s.id for s in clients.cinder.volume_snapshots.list()})
    return raw, alone


def burst(clients, volumes):
    """Every volume's snapshot begun at once, no freeze: seconds until all
    are available."""
    tag = {'bench-window-burst': uuid.uuid4().hex}
    began = time.perf_counter()
    made = clients_module.each(
        lambda v: clients.cinder.volume_snapshots.create(
            v, force=True, name='bench-window burst', metadata=tag).id,
        volumes)

    def all_available():
        listed = {s.id: s.status for s in clients.cinder.volume_snapshots
                  .list(search_opts={'metadata': tag})}
        return all(listed.get(i) == 'available' for i in made)
    wait('the burst', all_available, interval_s=0.02)
    took = time.perf_counter() - began
    for snapshot_id in made:
        clients.cinder.volume_snapshots.delete(snapshot_id)
    wait('the burst gone', lambda: not set(made) & {
        s.id for s in clients.cinder.volume_snapshots.list()})
    return took


def set_latency(seconds):
    with open(LATENCY_SWITCH, 'w') as f:
        f.write('%s\n' % seconds)


def measure(clients, agent, locator, server_id, volumes, rounds,
            service=None):
    """Rows of figures for one server at one count and latency."""
    log = GuestLog(server_id)
    figures = collections.defaultdict(list)
    for n in range(rounds):
        raw, alone = floor(clients, agent, server_id, log, volumes[-1])
        figures['floor'].append(raw + alone)
        figures['raw'].append(raw)
        figures['alone'].append(alone)
        figures['burst'].append(burst(clients, [
            a.volumeId for a in clients.nova.volumes.get_server_volumes(
                server_id)]))
        order = [('nova', nova_path, remove_nova),
                 ('ours', lambda c, s: our_path(c, s, locator),
                  remove_ours)]
        if service is not None:
            order.append(('api', lambda c, s: service_path(service, s),
                          remove_ours))
        for name, take, remove in order[::1 if n % 2 == 0 else -1]:
            time.sleep(2)
            log.mark()
            usable, self_s, made = take(clients, server_id)
            figures[name + ' guest'].append(log.windows()[0])
            figures[name + ' usable'].append(usable)
            if self_s is not None:
                figures[name + ' self'].append(self_s)
            remove(clients, made)
        print('  round %d: %s' % (n + 1, ', '.join(
            '%s %.2f' % (k, v[-1]) for k, v in figures.items())),
            flush=True)
    return {k: statistics.median(v) for k, v in figures.items()}


COLUMNS = (('nova guest', 'Nova'), ('ours guest', 'ours'),
           ('ours self', 'self'), ('api guest', 'API'),
           ('api self', 'API self'), ('floor', 'floor'),
           ('raw', 'raw fz'), ('alone', '1 snap'), ('burst', 'N snaps'),
           ('nova usable', 'Nova usable'), ('ours usable', 'ours usable'),
           ('api usable', 'API usable'))


def print_table(kind, latency, rows):
    columns = [c for c in COLUMNS if c[0] in rows[0][1]]
    print()
    print('%s-backed, snapshot latency %s s; windows seen by the guest and '
          'usable times, medians, seconds' % (kind, latency))
    print('| data volumes | %s | ratio | over floor |' % ' | '.join(
        title for _, title in columns))
    print('|---' * (len(columns) + 3) + '|')
    for count, row in rows:
        print('| %d | %s | %.2f | %+.2f |' % (count, ' | '.join(
            '%.2f' % row[key] for key, _ in columns),
            row['ours guest'] / row['nova guest'],
            row['ours guest'] - row['floor']))
    print(flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kinds', default='volume,image')
    parser.add_argument('--counts', default='1,2,4,8,16')
    parser.add_argument('--latencies', default='0,0.5')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--service', action='store_true',
                        help='also take the set through the REST API')
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(','))
    latencies = [float(v) for v in args.latencies.split(',')]
    clients = benchcloud.clients()
    admin = benchcloud.clients('minicloud-admin')
    project = clients.project_id
    quotas = admin.cinder.quotas.get(project).to_dict()
    admin.cinder.quotas.update(project, volumes=max(counts) + 20,
                               snapshots=4 * max(counts) + 20)
    agent = agent_module.AgentClient(clients.session, benchcloud.AGENT)
    locator = agent_module.AgentLocator(benchcloud.AGENT)
    service = (service_client.ServiceClient(clients.session)
               if args.service else None)
    tables = []
    try:
        for kind in args.kinds.split(','):
            server_id, volumes = boot(clients, kind), []
            try:
                guest_agent_up(agent, server_id)
                rows = collections.defaultdict(list)
                for count in counts:
                    attach_up_to(clients, server_id, count, volumes)
                    for latency in latencies:
                        set_latency(latency)
                        print('%s-backed, %d data volumes, latency %s s'
                              % (kind, count, latency), flush=True)
                        rows[latency].append((count, measure(
                            clients, agent, locator, server_id, volumes,
                            args.rounds, service)))
                for latency in latencies:
                    tables.append((kind, latency, rows[latency]))
                    print_table(kind, latency, rows[latency])
            finally:
                remove_server(clients, server_id, volumes)
    finally:
        if os.path.exists(LATENCY_SWITCH):
            os.unlink(LATENCY_SWITCH)
        admin.cinder.quotas.update(project, volumes=quotas['volumes'],
                                   snapshots=quotas['snapshots'])
    print('All tables')
    for table in tables:
        print_table(*table)


def remove_server(clients, server_id, volumes):
    clients.nova.servers.delete(server_id)
    wait('server gone', lambda: server_id not in {
        s.id for s in clients.nova.servers.list()})
    for volume_id in volumes:
        wait('volume %s deleted' % volume_id, lambda v=volume_id:
             benchcloud.delete_volume(clients, v), timeout_s=120)


if __name__ == '__main__':
    main()
