"""The worker's reaper on the mini-cloud, run as an operator or a timer
runs it (``snapshot-dashboard-worker --reap-once``): what a dead run left
on the compute node and in Cinder goes, what is not a dead run's stays.

A dead run here is a run id no run in the worker's database has: what a
killed ``openstack server snapshot create --in-process`` leaves. The
fault trials (``make faults``) kill real runs; these tests pin the two
leftovers that need more than a delete.
"""

import json
import os
import subprocess
import sys
import uuid

import requests

from snapshot_dashboard.orchestration import properties
from tests.integration.conftest import ROOT
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for

sys.path.insert(0, os.path.join(ROOT, 'tools', 'minicloud'))
import minicloud  # noqa: E402

STATE = os.path.join(ROOT, '.state', 'minicloud')
AGENT_URL = 'http://127.0.0.1:9797'


def reap_once(grace_s):
    """The reaper's pass; the JSON lines it printed."""
    cloud = minicloud.MiniCloud(STATE)
    result = subprocess.run(
        [cloud.bin('snapshot-dashboard-worker'), '--reap-once',
         '--grace-seconds', str(grace_s)],
        env=dict(os.environ, **cloud.django_env()), capture_output=True,
        text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()
            if line.strip()]


def agent_call(clients, method, path, **body):
    response = clients.session.request(
        AGENT_URL + path, method, json=body or None, raise_exc=False)
    return response.status_code, response.json()


def copied(clients, server_id, run_id=None):
    """A copy of the server's root drive taken through the mini-cloud's
    agent as ``clients``, for ``run_id``; once the copy is done."""
    body = {'devices': ['vda']}
    if run_id:
        body['run'] = run_id
    status, taken = agent_call(clients, 'POST', '/v1/servers/%s/captures'
                               % server_id, **body)
    assert status == 201, taken
    path = '/v1/servers/%s/captures/%s' % (server_id, taken['capture']['id'])
    wait_for('the copy', lambda: agent_call(clients, 'GET', path)[1][
        'capture']['state'] == 'copied', timeout_s=120, interval_s=0.5)
    return path


def test_a_dead_runs_agent_copy_is_removed_and_an_untagged_one_left(
        demo, clouds_yaml):
    server = server_by_name(demo, 'demo-image')
    dead_run = str(uuid.uuid4())
    dead = copied(demo, server.id, dead_run)
    untagged = copied(demo, server.id)
    try:
        # A member may not list what the agent holds on every server.
        assert agent_call(demo, 'GET', '/v1/captures')[0] == 403
        reaped = reap_once(grace_s=0)
        assert [(r['kind'], r['run_id'], r['outcome']) for r in reaped
                if r['run_id'] == dead_run] == [
            ('agent-copy', dead_run, 'deleted')]
        status, shown = agent_call(demo, 'GET', dead)
        assert status == 200 and shown['capture']['state'] == 'deleted'
        assert agent_call(demo, 'GET', untagged)[1]['capture'][
            'state'] == 'copied'
    finally:
        for path in (dead, untagged):
            agent_call(demo, 'DELETE', path)


def test_a_snapshot_left_creating_is_reset_and_removed(demo, admin,
                                                        clouds_yaml):
    # What cinder-volume killed while it made the snapshot leaves: Cinder
    # refuses to delete it and never moves it on. (Set here with
    # reset-state, as the kill leaves it.)
    server = server_by_name(demo, 'demo-volume')
    volume_id = demo.nova.volumes.get_server_volumes(server.id)[-1].volumeId
    dead_run = str(uuid.uuid4())
    snapshot = demo.cinder.volume_snapshots.create(
        volume_id, force=True, name='reaper-test',
        metadata={properties.RUN: dead_run,
                  properties.SERVER: server.id})
    wait_for('the snapshot', lambda: demo.cinder.volume_snapshots.get(
        snapshot.id).status == 'available', timeout_s=120)
    admin.cinder.volume_snapshots.reset_state(snapshot.id, 'creating')
    try:
        reaped = reap_once(grace_s=0)
        (record,) = [r for r in reaped if r['run_id'] == dead_run]
        assert record['id'] == snapshot.id
        assert record['outcome'] == (
            'deleted after a reset from creating to error')
        wait_for('the snapshot to go', lambda: snapshot.id not in {
            s.id for s in demo.cinder.volume_snapshots.list()},
            timeout_s=120)
    finally:
        if snapshot.id in {s.id for s in
                           admin.cinder.volume_snapshots.list(
                               search_opts={'all_tenants': 1})}:
            admin.cinder.volume_snapshots.reset_state(snapshot.id, 'error')
            admin.cinder.volume_snapshots.delete(snapshot.id)


def test_the_agent_lists_its_copies_to_the_service_user_only(
        demo, admin, clouds_yaml):
    # An admin of the cloud (privileged role) may; no token may not.
    assert requests.get(AGENT_URL + '/v1/captures', timeout=10
                        ).status_code == 401
    status, listed = agent_call(admin, 'GET', '/v1/captures')
    assert status == 200 and isinstance(listed['captures'], list)


def test_a_restores_volume_never_delivered_is_removed_a_delivered_one_kept(
        demo, clouds_yaml):
    dead_run = str(uuid.uuid4())
    tags = {properties.RUN: dead_run,
            properties.RESTORED_FROM: '%s /dev/vdb' % uuid.uuid4()}
    left = demo.cinder.volumes.create(1, name='reaper-test-left',
                                      metadata=tags)
    kept = demo.cinder.volumes.create(
        1, name='reaper-test-kept',
        metadata=dict(tags, **{properties.DELIVERED: 'True'}))
    try:
        for volume in (left, kept):
            wait_for('the volume', lambda v=volume: demo.cinder.volumes.get(
                v.id).status == 'available', timeout_s=120)
        reaped = reap_once(grace_s=0)
        assert [(r['kind'], r['id'], r['outcome']) for r in reaped
                if r['run_id'] == dead_run] == [('volume', left.id,
                                                 'deleted')]
        wait_for('the volume to go', lambda: left.id not in {
            v.id for v in demo.cinder.volumes.list()}, timeout_s=120)
        assert demo.cinder.volumes.get(kept.id).status == 'available'
    finally:
        for volume in (left, kept):
            if volume.id in {v.id for v in demo.cinder.volumes.list()}:
                demo.cinder.volumes.delete(volume.id)
