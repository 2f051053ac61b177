"""A restore in place of every drive, per kind of server, against Nova's
own path on the same server in the same run.

    .venv/bin/python tools/benchmarks/restore_in_place.py [--rounds 2]

Needs the mini-cloud up (its agent on 127.0.0.1:9797). Boots two servers
of its own as the demo user, each with a 1 GB data volume: one
image-backed (root 1 GB, ephemeral 1 GB), one volume-backed (1 GB root
volume). Takes a set of every drive of each, then ``--rounds`` times
restores every drive in place through the orchestration core (safety set
first; the server running before, running after), and, on the same
server, Nova's own path to roll a server back: stop, rebuild (the
image-backed root from the set's root image; the volume-backed one from a
Cinder-made image of its snapshot, at 2.93, the image made outside the
timing), start. Nova's path restores only the root and takes no safety
set: it is the floor. Prints each round and the medians per step; asserts
nothing. Deletes everything it made.
"""

import argparse
import collections
import statistics
import time
import uuid

import benchcloud
from benchcloud import AGENT
from benchcloud import delete_volume
from benchcloud import settled
from benchcloud import wait

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import microversions
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window

STEPS = (events.SAFETY_SET, events.RESTORE, events.STOP, events.DETACH,
         events.ATTACH, events.REBUILD, events.WRITE, events.START)


def boot(clients, name, volume_backed):
    server_id = benchcloud.boot(clients, name, volume_backed)
    volume = clients.cinder.volumes.create(1, name='%s data' % name)
    wait('its volume', lambda: clients.cinder.volumes.get(
        volume.id).status == 'available')
    clients.nova.volumes.create_server_volume(server_id, volume.id)
    wait('its volume attached', lambda: clients.cinder.volumes.get(
        volume.id).status == 'in-use')
    return server_id


class Steps:
    """A progress callback timing each step of the restore."""

    def __init__(self):
        self.began = {}
        self.took = collections.defaultdict(float)

    def __call__(self, event):
        key = (event.step, event.device)
        if event.state == events.STARTED:
            self.began[key] = time.monotonic()
        elif key in self.began:
            self.took[event.step] += time.monotonic() - self.began.pop(key)


def nova_path(clients, server_id, snapshot_set, volume_backed, made):
    """Stop, rebuild the root from the set, start: seconds."""
    root = next(d for d in snapshot_set.drives if d.kind.startswith('root'))
    image_id = root.image_id
    nova = clients.nova
    if volume_backed:  # an image of the root's snapshot, not timed
        volume = clients.cinder.volumes.create(
            1, snapshot_id=root.snapshot_id, name='bench root source')
        wait('source volume', lambda: clients.cinder.volumes.get(
            volume.id).status == 'available')
        _, body = clients.cinder.volumes.upload_to_image(
            volume.id, False, 'bench root image', 'bare', 'qcow2',
            'private', False)
        image_id = body['os-volume_upload_image']['image_id']
        made['images'].append(image_id)
        wait('root image', lambda: clients.glance.images.get(
            image_id)['status'] == 'active')
        wait('source volume free', lambda: clients.cinder.volumes.get(
            volume.id).status == 'available')
        clients.cinder.volumes.delete(volume.id)
        nova = clients.nova_at(microversions.NOVA_REIMAGE_BOOT_VOLUME)
    began = time.monotonic()
    clients.nova.servers.stop(server_id)
    wait('stopped', lambda: settled(clients, server_id, 'SHUTOFF'))
    nova.servers.rebuild(server_id, image_id)
    time.sleep(1)
    wait('rebuilt', lambda: settled(clients, server_id, 'SHUTOFF'))
    clients.nova.servers.start(server_id)
    wait('started', lambda: settled(clients, server_id, 'ACTIVE'))
    return time.monotonic() - began


def rounds_of(clients, locator, kind, volume_backed, count, made):
    server_id = boot(clients, 'bench-restore-%s' % kind, volume_backed)
    made['servers'].append(server_id)
    taken = run.create_snapshot_set(
        clients, server_id, consistency=window.AUTO, wait=True,
        agent_locator=locator)
    made['sets'].append(taken.id)
    rounds = []
    for n in range(count):
        steps = Steps()
        began = time.monotonic()
        run_id = 'bench-%s' % uuid.uuid4()
        safety = inplace.restore_in_place(
            clients, taken.id, progress=steps, agent_locator=locator,
            run_id=run_id)
        ours = time.monotonic() - began
        nova = nova_path(clients, server_id, taken, volume_backed, made)
        # Its safety set and the volume it replaced go (but the first,
        # which the set's snapshot needs), so the rounds fit the quotas.
        sets.delete_set(clients, safety.id)
        for volume in clients.cinder.volumes.list():
            if (volume.metadata or {}).get(
                    properties.REPLACED_BY) == run_id and (
                        volume.metadata.get(properties.RUN)):
                try:
                    wait('volume %s deleted' % volume.id,
                         lambda v=volume.id: delete_volume(clients, v),
                         timeout_s=120)
                except SystemExit as e:
                    print(e)
        rounds.append((ours, nova, dict(steps.took)))
        print('%-13s round %d: restore in place %5.1f s, Nova stop + '
              'rebuild + start %5.1f s (%.2fx); %s' % (
                  kind, n + 1, ours, nova, ours / nova, ', '.join(
                      '%s %.1f' % (s, steps.took[s]) for s in STEPS
                      if s in steps.took)), flush=True)
    return rounds


def remove(clients, made):
    """The servers, the sets, the images, then the volumes (once no
    snapshot of theirs is left)."""
    volumes = set()
    for server_id in made['servers']:
        volumes |= delete_server(clients, server_id)
    for set_id in made['sets']:
        try:
            sets.delete_set(clients, set_id)
        except errors.SetNotFound:
            pass
    for image_id in made['images']:
        try:
            clients.glance.images.delete(image_id)
        except Exception:  # noqa: S110 - gone already
            pass
    for volume_id in volumes:
        try:
            wait('volume %s deleted' % volume_id, lambda v=volume_id:
                 delete_volume(clients, v), timeout_s=120)
        except SystemExit as e:
            print(e)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()
    clients = benchcloud.clients()
    locator = agent_module.AgentLocator(AGENT)
    results = {}
    for kind, volume_backed in (('image-backed', False),
                                ('volume-backed', True)):
        # One kind at a time, removed before the next: the project's
        # quota of 10 volumes holds one.
        made = {'servers': [], 'sets': [], 'images': []}
        try:
            results[kind] = rounds_of(clients, locator, kind, volume_backed,
                                      args.rounds, made)
        finally:
            remove(clients, made)
    print()
    print('%-13s %9s %9s %7s  %s' % ('server', 'ours (s)', 'nova (s)',
                                     'ratio', 'ours by step (median s)'))
    for kind, rounds in results.items():
        ours = statistics.median(r[0] for r in rounds)
        nova = statistics.median(r[1] for r in rounds)
        by_step = ', '.join('%s %.1f' % (s, statistics.median(
            r[2].get(s, 0.0) for r in rounds)) for s in STEPS
            if any(s in r[2] for r in rounds))
        print('%-13s %9.1f %9.1f %6.2fx  %s' % (kind, ours, nova,
                                               ours / nova, by_step))


def delete_server(clients, server_id):
    """Delete the server; the volumes it had and the ones restores
    replaced (named after it), to delete once the sets are gone."""
    server = clients.nova.servers.get(server_id)
    volumes = {a.volumeId for a in
               clients.nova.volumes.get_server_volumes(server_id)} | {
        v.id for v in clients.cinder.volumes.list()
        if (v.name or '').startswith(server.name + ' ')}
    clients.nova.servers.delete(server_id)
    wait('server gone', lambda: server_id not in {
        s.id for s in clients.nova.servers.list()})
    return volumes


if __name__ == '__main__':
    main()
