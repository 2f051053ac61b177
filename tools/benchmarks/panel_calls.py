"""The API calls behind a page of the Snapshot Sets panel, at 10, 100
and 1,000 sets.

    .venv/bin/python tools/benchmarks/panel_calls.py [--counts 10,100,1000]

Needs the mini-cloud up. Makes data-less set images in the demo project
(as a volume-backed set's image is, each naming one volume snapshot),
and counts every HTTP request a page of the panel's data takes
(``page_sets`` at Horizon's default page size of 20, the first page and
the next one through its marker, plus the server names, as the view calls
them, plus the Keystone authentication a request's session makes), with
its time; beside it, the same for reading every set (``list_sets``, what
the panel did before it paged). Then deletes the images. Prints figures;
asserts nothing.
"""

import argparse
import collections
import io
import json
import os
import time
import uuid

from keystoneauth1 import session as ks_session
import openstack.config

from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import sets

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


PAGE_SIZE = 20


def make_sets(clients, count):
    def make(_):
        set_id = str(uuid.uuid4())
        clients.glance.images.create(
            id=set_id, name='panel-calls %s' % set_id[:8], disk_format='raw',
            container_format='bare', image_type='snapshot',
            **{properties.SET_ID: set_id, properties.SERVER: 'none',
               # One volume snapshot per set, so Cinder is asked too.
               properties.DEVICES: json.dumps([sets.Drive(
                   name='/dev/vdb', kind='volume', size_gb=1,
                   snapshot_id=str(uuid.uuid4())).to_dict()])})
        clients.glance.images.upload(set_id, io.BytesIO(b''), image_size=0)
        return set_id
    return clients_module.each(make, range(count))


def counted(config, read):
    """A fresh session, as each Horizon request has: what ``read(clients)``
    returns, every request it sends by method and path, and its ms."""
    calls = collections.Counter()
    region = config.get_one('minicloud-demo')
    session = region.get_session()
    original = ks_session.Session.request

    def counting(self, url, method, **kwargs):
        calls['%s %s' % (method, url.split('?')[0].split(':', 2)[-1])] += 1
        return original(self, url, method, **kwargs)

    ks_session.Session.request = counting
    try:
        clients = clients_module.Clients(session)
        started = time.perf_counter()
        found = read(clients)
        {s.id: s.name for s in clients.nova.servers.list()}  # noqa: B018
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        ks_session.Session.request = original
    return found, calls, elapsed


def show(what, listed, calls, elapsed):
    print('  %-22s %4d sets: %3d HTTP requests in %5.0f ms (%s)' % (
        what, listed, sum(calls.values()), elapsed,
        ', '.join('%s x%d' % item for item in sorted(calls.items()))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--counts', default='10,100,1000')
    args = parser.parse_args()
    config = openstack.config.OpenStackConfig(config_files=[os.path.join(
        REPO, '.state', 'minicloud', 'clouds.yaml')])
    demo = clients_module.Clients(config.get_one(
        'minicloud-demo').get_session())
    before = len(sets.list_sets(demo))
    made = []
    try:
        for target in sorted(int(c) for c in args.counts.split(',')):
            made += make_sets(demo, target - len(made))
            print('%d sets made (%d were there)' % (len(made), before))
            (page, marker), calls, elapsed = counted(
                config, lambda c: sets.page_sets(c, PAGE_SIZE))
            show('first page', len(page), calls, elapsed)
            if marker:
                (page, _), calls, elapsed = counted(
                    config, lambda c, m=marker: sets.page_sets(
                        c, PAGE_SIZE, marker=m))
                show('next page', len(page), calls, elapsed)
            found, calls, elapsed = counted(config, sets.list_sets)
            show('every set (unpaged)', len(found), calls, elapsed)
    finally:
        clients_module.each(demo.glance.images.delete, made)


if __name__ == '__main__':
    main()
