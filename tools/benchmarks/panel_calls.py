"""The API calls behind the Snapshot Sets panel, for 1 and for 50 sets.

    .venv/bin/python tools/benchmarks/panel_calls.py

Needs the mini-cloud up. Makes data-less set images in the demo project
(as a volume-backed set's image is, each naming one volume snapshot),
counts every HTTP request the panel's
data takes (``list_sets`` and the server names, as the view calls them,
plus the Keystone authentication a request's session makes), then deletes
the images. Prints figures; asserts nothing.
"""

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


def make_sets(clients, count):
    made = []
    for _ in range(count):
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
        made.append(set_id)
    return made


def panel_calls(config):
    """A fresh session, as each Horizon request has: every request it
    sends, by method and path."""
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
        found = sets.list_sets(clients)
        {s.id: s.name for s in clients.nova.servers.list()}  # noqa: B018
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        ks_session.Session.request = original
    return len(found), calls, elapsed


def main():
    config = openstack.config.OpenStackConfig(config_files=[os.path.join(
        REPO, '.state', 'minicloud', 'clouds.yaml')])
    demo = clients_module.Clients(config.get_one(
        'minicloud-demo').get_session())
    made = make_sets(demo, 1)
    try:
        for target in (1, 50):
            made += make_sets(demo, target - len(made))
            listed, calls, elapsed = panel_calls(config)
            print('%d sets listed: %d HTTP requests in %.0f ms (%s)' % (
                listed, sum(calls.values()), elapsed,
                ', '.join('%s x%d' % item for item in sorted(calls.items()))))
    finally:
        for set_id in made:
            demo.glance.images.delete(set_id)


if __name__ == '__main__':
    main()
