"""The REST API of snapshot sets on the mini-cloud: real Keystone tokens of
demo, demo2 and demo-reader, the API under gunicorn found in the catalog,
the mini-cloud's worker taking what it queues, real guests."""

import json
import os
import subprocess
import sys

from keystoneclient.v3 import client as keystone_client
import pytest
import requests

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import sets
from tests.integration.conftest import ROOT
from tests.integration.conftest import Guest
from tests.integration.conftest import _clients
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for

API = 'http://127.0.0.1:9798'
SETTINGS_DIR = os.path.join(ROOT, '.state', 'minicloud', 'etc',
                            'snapshot-dashboard')


def service_of(clients):
    return service_client.ServiceClient(clients.session)


@pytest.fixture(scope='module')
def reader(cloud_config):
    return _clients(cloud_config, 'minicloud-demo-reader')


@pytest.fixture
def made(demo):
    """Sets and schedules a test made, removed after it."""
    found = {'sets': [], 'schedules': []}
    yield found
    for schedule_id in found['schedules']:
        try:
            service_of(demo).delete_schedule(schedule_id)
        except service_client.ServiceError:
            pass
    for set_id in found['sets']:
        try:
            sets.delete_set(demo, set_id)
        except errors.SetNotFound:
            pass


def trusts_of(clients):
    keystone = keystone_client.Client(session=clients.session)
    return {t.id for t in keystone.trusts.list(
        trustor_user=clients.session.get_user_id())}


def wait_until_ended(service, run_id, timeout_s=300):
    return wait_for('run %s to end' % run_id, lambda: (
        lambda run: run if run['state'] in ('succeeded', 'failed')
        else None)(service.get_run(run_id)), timeout_s=timeout_s)


def test_the_version_document_answers_without_a_token():
    response = requests.get(API + '/', timeout=30)
    assert response.status_code == 200
    assert response.json()['versions'][0]['id'] == 'v1.0'
    assert requests.get(API + '/v1/runs', timeout=30).status_code == 401


def test_demo_gets_application_consistency_with_no_agent_of_its_own(
        openstack_cli, demo, admin, made):
    """The issue's own words: as demo, no agent option, --wait."""
    server = server_by_name(demo, 'demo-volume')
    guest = Guest(admin, server.id)
    guest.wait_until_answering()
    env = {k: v for k, v in os.environ.items()
           if k != 'SNAPSHOT_DASHBOARD_AGENT_URL'}
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'openstack'),
         '--os-cloud', 'minicloud-demo', 'server', 'snapshot', 'create',
         'demo-volume', '--consistency', 'application', '--wait', '-f',
         'json'], capture_output=True, text=True, timeout=900, check=False,
        env=dict(env, OS_CLIENT_CONFIG_FILE=os.path.join(
            ROOT, '.state', 'minicloud', 'clouds.yaml')))
    assert result.returncode == 0, result.stderr[-4000:]
    shown = json.loads(result.stdout)
    made['sets'].append(shown['id'])
    assert (shown['consistency'], shown['status']) == ('application',
                                                       'available')
    (run,) = [r for r in service_of(demo).list_runs(server_id=server.id,
                                                    limit=5)
              if r['set_id'] == shown['id']]
    # The worker took it, through the agent it found itself.
    assert run['achieved_consistency'] == 'application'
    steps = [(e['step'], e['state']) for e in run['events']]
    assert ('open-window', 'done') in steps
    assert server_by_name(demo, 'demo-volume').status == 'ACTIVE'


def test_bad_input_is_refused_and_leaves_no_run_and_no_trust(demo):
    service = service_of(demo)
    server = server_by_name(demo, 'demo-image')
    runs_before = {r['id'] for r in service.list_runs(limit=1000)}
    trusts_before = trusts_of(demo)
    for fields, status, reason in (
            ({'devices': ['vdz']}, 400, 'Unknown device(s) /dev/vdz'),
            ({'consistency': 'best'}, 400, 'consistency must be one of'),
            ({'budget_s': 100000}, 400, 'budget_s must be')):
        with pytest.raises(service_client.ServiceError) as raised:
            service.create_run(server.id, **fields)
        assert (raised.value.status, reason in str(raised.value)) == (
            status, True)
    # On the session's pooled connection: it stays usable after the 413.
    response = demo.session.post(
        API + '/v1/runs', data=b'{"run": {"server_id": "%s", "name": "%s"}}'
        % (server.id.encode(), b'x' * 70000), raise_exc=False,
        headers={'Content-Type': 'application/json'})
    assert response.status_code == 413
    assert {r['id'] for r in service.list_runs(limit=1000)} == runs_before
    assert trusts_of(demo) == trusts_before


def test_demo2_can_neither_see_nor_touch_demos_runs_sets_or_schedules(
        demo, demo2, made):
    mine, theirs = service_of(demo), service_of(demo2)
    server = server_by_name(demo, 'demo-image')
    run = wait_until_ended(mine, mine.create_run(
        server.id, devices=['vdc'], consistency='crash')['id'])
    assert run['state'] == 'succeeded', run['error']
    made['sets'].append(run['set_id'])
    schedule = mine.create_schedule(
        name='not for demo2', server_id=server.id, timing='daily',
        keep_last=2, devices=['vdc'])
    made['schedules'].append(schedule['id'])

    for call, args in ((theirs.get_run, [run['id']]),
                       (theirs.get_set, [run['set_id']]),
                       (theirs.delete_set, [run['set_id']]),
                       (theirs.get_schedule, [schedule['id']]),
                       (theirs.pause_schedule, [schedule['id']]),
                       (theirs.delete_schedule, [schedule['id']]),
                       (theirs.create_run, [server.id])):
        with pytest.raises(service_client.ServiceError) as raised:
            call(*args)
        assert raised.value.status == 404, (call.__name__, raised.value)
    with pytest.raises(service_client.ServiceError) as raised:
        theirs.update_schedule(schedule['id'], hour=5)
    assert raised.value.status == 404
    assert run['id'] not in {r['id'] for r in theirs.list_runs()}
    assert run['set_id'] not in {s['id'] for s in theirs.list_sets()}
    assert schedule['id'] not in {s['id'] for s in theirs.list_schedules()}
    # All of it is still there, unchanged.
    assert mine.get_set(run['set_id'])['status'] == 'available'
    kept = mine.get_schedule(schedule['id'])
    assert (kept['enabled'], kept['hour']) == (True, schedule['hour'])


def test_a_reader_sees_the_projects_runs_but_cannot_take_or_schedule(
        demo, reader, made):
    server = server_by_name(demo, 'demo-image')
    mine, read_only = service_of(demo), service_of(reader)
    queued = mine.create_run(server.id, devices=['vdd'],
                             consistency='crash')
    assert queued['id'] in {r['id'] for r in read_only.list_runs()}
    run = wait_until_ended(read_only, queued['id'])
    made['sets'].append(run['set_id'])
    trusts_before = trusts_of(reader)
    for call, kwargs in (
            (read_only.create_run, {'server_id': server.id}),
            (read_only.create_schedule, {
                'name': 'reader', 'server_id': server.id,
                'timing': 'daily', 'keep_last': 1})):
        with pytest.raises(service_client.ServiceError) as raised:
            call(**kwargs)
        assert raised.value.status == 403
    with pytest.raises(service_client.ServiceError) as raised:
        read_only.delete_set(run['set_id'])
    assert raised.value.status == 403
    assert read_only.get_set(run['set_id'])['status'] == 'available'
    assert trusts_of(reader) == trusts_before


HORIZON_WAY = '''
import json, sys
import django
django.setup()
import openstack.config
from snapshot_dashboard import credentials, lifecycle
region = openstack.config.OpenStackConfig(
    config_files=[sys.argv[1]]).get_one('minicloud-demo')
session = region.get_session()
caller = credentials.Caller(
    user_id=session.get_user_id(), user_name='demo',
    project_id=session.get_project_id(), role_names=('member', 'reader'),
    session=session)
run = lifecycle.queue_run(caller, sys.argv[2], 'demo-image', ['/dev/vdc'],
                          'from horizon', '', 'crash')
print(run.pk)
'''

WORKER_OF = '''
import sys
import django
django.setup()
from snapshot_dashboard import models
print(' '.join(models.SnapshotRun.objects.get(pk=pk).worker
               for pk in sys.argv[1:]))
'''


def minicloud_django(code, *args):
    """Python with the Django settings of the mini-cloud's API and worker:
    their database."""
    env = dict(os.environ,
               DJANGO_SETTINGS_MODULE='snapshot_dashboard_settings',
               PYTHONPATH=os.pathsep.join([SETTINGS_DIR, ROOT]))
    result = subprocess.run([sys.executable, '-c', code, *args], env=env,
                            capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip()


def test_runs_queued_by_horizon_and_by_the_api_are_taken_alike(
        demo, clouds_yaml, made):
    """Horizon's views queue with lifecycle.queue_run and the caller's
    token, into the database the API uses: one worker takes both."""
    service = service_of(demo)
    server = server_by_name(demo, 'demo-image')
    from_api = service.create_run(server.id, devices=['/dev/vdc'],
                                  consistency='crash', name='from the api')
    from_horizon = minicloud_django(HORIZON_WAY, clouds_yaml, server.id)
    ended = [wait_until_ended(service, run_id)
             for run_id in (from_api['id'], from_horizon)]
    made['sets'].extend(r['set_id'] for r in ended if r['set_id'])
    assert [r['state'] for r in ended] == ['succeeded'] * 2, [
        r['error'] for r in ended]
    assert [r['achieved_consistency'] for r in ended] == ['crash'] * 2
    assert [[d.name for d in sets.SnapshotSet.from_dict(
        service.get_set(r['set_id'])).drives] for r in ended] == [
        ['/dev/vdc']] * 2
    workers = minicloud_django(WORKER_OF, from_api['id'],
                               from_horizon).split()
    assert len(workers) == 2 and len(set(workers)) == 1, workers
