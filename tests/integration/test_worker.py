"""The worker on the mini-cloud: real worker processes, a real Keystone
trust from the demo user, real guests. A worker killed while the guest is
frozen leaves the run to another worker, which thaws, cleans up and
finishes it."""

import os
import signal
import subprocess
import sys

from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from keystoneauth1 import exceptions as ks_exceptions
from keystoneclient.v3 import client as keystone_client
import pytest

from snapshot_dashboard import models
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import timing
from tests.integration.conftest import ROOT
from tests.integration.conftest import Guest
from tests.integration.conftest import _clients
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for

DB = 'worker'


@pytest.fixture(scope='module')
def database(django_db_blocker):
    with django_db_blocker.unblock():
        path = connections[DB].settings_dict['NAME']
        if os.path.exists(path):
            os.unlink(path)
        call_command('migrate', database=DB, verbosity=0)
    return django_db_blocker


@pytest.fixture(scope='module')
def service(cloud_config):
    return _clients(cloud_config, 'minicloud-service')


class WorkerProcess:
    def __init__(self, log, *args):
        self.log = log
        self.args = args
        self.process = None

    def start(self):
        env = dict(os.environ, PYTHONPATH=ROOT,
                   DJANGO_SETTINGS_MODULE='tests.integration.worker_settings')
        binary = os.path.join(os.path.dirname(sys.executable),
                              'snapshot-dashboard-worker')
        self.process = subprocess.Popen(
            [binary, '--poll', '0.2', *self.args], env=env, cwd=ROOT,
            stdout=open(self.log, 'a'), stderr=subprocess.STDOUT)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=120)


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(*args):
        worker = WorkerProcess(tmp_path / ('worker-%d.log' % len(started)),
                               *args).start()
        started.append(worker)
        return worker
    yield start
    for worker in started:
        worker.stop()


def enqueue(database, demo, service, server, devices, consistency):
    """What the view does: a trust from demo to the service user, a row."""
    trust = keystone_client.Client(session=demo.session).trusts.create(
        trustee_user=service.session.get_user_id(),
        trustor_user=demo.session.get_user_id(),
        project=demo.project_id, role_names=['member'], impersonation=True)
    with database.unblock():
        return models.SnapshotRun.objects.using(DB).create(
            project_id=demo.project_id, user_id=demo.session.get_user_id(),
            user_name='demo', server_id=server.id, server_name=server.name,
            devices=devices, consistency=consistency, trust_id=trust.id)


def reload(database, run):
    with database.unblock():
        return models.SnapshotRun.objects.using(DB).get(pk=run.pk)


def wait_until_ended(database, run, timeout_s=300):
    return wait_for('run %s to end' % run.pk, lambda: (
        lambda r: r if r.state in models.ENDED else None)(
            reload(database, run)), timeout_s=timeout_s, interval_s=0.5)


def trust_exists(service, trust_id):
    try:
        keystone_client.Client(session=service.session).trusts.get(trust_id)
    except ks_exceptions.NotFound:
        return False
    return True


def tagged(admin, run_id):
    images = {i['id'] for i in admin.glance.images.list(
        filters={properties.RUN: run_id})}
    snapshots = {s.id for s in admin.cinder.volume_snapshots.list(
        search_opts={'all_tenants': 1})
        if s.metadata.get(properties.RUN) == run_id}
    return images, snapshots


def test_the_worker_takes_exactly_the_chosen_drives_through_the_trust(
        database, demo, admin, service, workers):
    server = server_by_name(demo, 'demo-image')
    run = enqueue(database, demo, service, server, ['/dev/vda', '/dev/vdc'],
                  'application')
    workers()
    run = wait_until_ended(database, run)
    assert run.state == models.SUCCEEDED, run.error
    try:
        snapshot_set = sets.get_set(demo, run.set_id)
        assert sorted(d.name for d in snapshot_set.drives) == [
            '/dev/vda', '/dev/vdc']
        assert (run.achieved_consistency, snapshot_set.consistency) == (
            'application', 'application')
        assert run.drives == {'/dev/vda': 'captured',
                              '/dev/vdc': 'captured'}
        assert snapshot_set.run_id == str(run.pk)
        steps = [(e['step'], e['state']) for e in run.events]
        assert ('open-window', 'done') in steps
        assert ('close-window', 'done') in steps
        assert run.resource_ids(events.VOLUME_SNAPSHOT)
        # The set was made as demo, in demo's project, and the trust is gone.
        assert demo.glance.images.get(run.set_id)['owner'] == \
            demo.project_id
        # Deleted once the run is recorded ended, then forgotten.
        wait_for('the trust to be deleted', lambda: reload(
            database, run).trust_id == '', timeout_s=30, interval_s=0.2)
        assert run.window is None
    finally:
        sets.delete_set(demo, run.set_id)


def test_two_workers_never_take_the_same_run(database, demo, service,
                                             workers):
    servers = [server_by_name(demo, name) for name in
               ('demo-volume', 'demo-image', 'demo-volume')]
    runs = [enqueue(database, demo, service, server, ['/dev/vdb'], 'crash')
            for server in servers]
    workers()
    workers()
    ended = [wait_until_ended(database, run) for run in runs]
    try:
        assert [r.state for r in ended] == [models.SUCCEEDED] * 3, [
            r.error for r in ended]
        # Each run made one set: no run was executed twice.
        assert [r.attempts for r in ended] == [0, 0, 0]
        assert len({r.set_id for r in ended}) == 3
    finally:
        for run in ended:
            if run.set_id:
                sets.delete_set(demo, run.set_id)


def test_a_worker_killed_while_the_guest_is_frozen_is_recovered(
        database, demo, admin, service, workers):
    server = server_by_name(demo, 'demo-image')
    guest = Guest(admin, server.id)
    guest.wait_until_answering()
    run = enqueue(database, demo, service, server, None, 'application')
    first = workers('--heartbeat', '1')
    # Killed inside the freeze, once the agent has copied the local drives.
    wait_for('the copies in the window', lambda: (
        lambda r: r.window and r.resource_ids(events.AGENT_COPY))(
        reload(database, run)), timeout_s=120, interval_s=0.01)
    first.stop(signal.SIGKILL)
    killed = reload(database, run)
    assert killed.state == models.RUNNING
    assert killed.window['kind'] == 'AgentFreezeWindow'
    assert guest.command('guest-fsfreeze-status') == 'frozen'

    workers('--heartbeat', '1', '--stale', '3')
    run = wait_until_ended(database, run)
    try:
        assert run.state == models.SUCCEEDED, run.error
        assert run.attempts == 1
        assert 'thaw' in run.cleanup
        assert 'copy ' in run.cleanup  # the agent's copies of vda and vdb
        assert guest.command('guest-fsfreeze-status') == 'thawed'
        # Only the finished set carries the run's id: what the killed
        # attempt made was removed.
        snapshot_set = sets.get_set(demo, run.set_id)
        images, snapshots = tagged(admin, str(run.pk))
        assert images == {d.image_id for d in snapshot_set.drives
                          if d.image_id}
        assert snapshots == set(snapshot_set.snapshot_ids)
        assert not trust_exists(service, killed.trust_id)
    finally:
        sets.delete_set(demo, run.set_id)
    assert tagged(admin, str(run.pk)) == (set(), set())


def test_a_schedule_every_minute_keeps_the_last_two(database, demo, admin,
                                                   service, workers):
    """Three fires, keep-last 2: exactly the oldest set disappears, image and
    snapshots; the schedule's trust stays."""
    server = server_by_name(demo, 'demo-volume')
    trust = keystone_client.Client(session=demo.session).trusts.create(
        trustee_user=service.session.get_user_id(),
        trustor_user=demo.session.get_user_id(),
        project=demo.project_id, role_names=['member'], impersonation=True)
    now = timezone.now()
    with database.unblock():
        schedule = models.Schedule.objects.using(DB).create(
            project_id=demo.project_id, user_id=demo.session.get_user_id(),
            server_id=server.id, server_name=server.name,
            devices=['/dev/vdb'], consistency='crash', timing='cron',
            cron='* * * * *', timezone='Europe/Paris', name='every minute',
            keep_last=2, trust_id=trust.id,
            next_run_at=timing.next_fire('* * * * *', 'Europe/Paris', now))
    workers()

    def runs_of_schedule():
        with database.unblock():
            return list(models.SnapshotRun.objects.using(DB).filter(
                schedule_id=schedule.pk).order_by('created_at'))

    def three_ended():
        runs = runs_of_schedule()
        return runs if len(runs) >= 3 and all(
            r.state in models.ENDED for r in runs[:3]) else None
    runs = wait_for('three fires', three_ended, timeout_s=300)[:3]
    try:
        assert [r.state for r in runs] == [models.SUCCEEDED] * 3, [
            r.error for r in runs]
        oldest, *kept = runs
        mine = {s.id for s in sets.list_sets(demo, server_id=server.id)
                if s.schedule_id == str(schedule.pk)}
        assert mine == {r.set_id for r in kept}
        assert 'retention deleted %s' % oldest.set_id in runs[2].cleanup
        with pytest.raises(errors.SetNotFound):
            sets.get_set(demo, oldest.set_id)
        assert tagged(admin, str(oldest.pk)) == (set(), set())
        # One fire per minute, a minute apart.
        gaps = [(b.created_at - a.created_at).total_seconds()
                for a, b in zip(runs, runs[1:], strict=False)]
        assert all(50 <= gap <= 70 for gap in gaps), gaps
        assert trust_exists(service, trust.id)
    finally:
        with database.unblock():
            models.Schedule.objects.using(DB).filter(pk=schedule.pk).update(
                enabled=False)
        for snapshot_set in sets.list_sets(demo, server_id=server.id):
            if snapshot_set.schedule_id == str(schedule.pk):
                sets.delete_set(demo, snapshot_set.id)
        keystone_client.Client(session=demo.session).trusts.delete(trust.id)
