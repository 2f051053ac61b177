"""Claiming runs and recording them, on the test database."""

import datetime
import importlib
import time
from unittest import mock

from django.apps import apps as django_apps
from django.db import OperationalError
from django.db import connection
from django.test import TestCase
from django.test import TransactionTestCase
from django.utils import timezone
from keystoneauth1 import exceptions as ks_exceptions

from snapshot_dashboard import models
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.worker import runs
from snapshot_dashboard.worker import schedules


def queued(server_id='server-1', **fields):
    return models.SnapshotRun.objects.create(
        project_id='p', user_id='u', server_id=server_id,
        consistency='auto', **fields)


class ClaimTests(TestCase):
    def test_a_run_is_claimed_once(self):
        run = queued()
        first = runs.claim_queued('worker-a')
        second = runs.claim_queued('worker-b')
        self.assertEqual(run.pk, first.pk)
        self.assertIsNone(second)
        first.refresh_from_db()
        self.assertEqual((first.state, first.worker),
                         (models.RUNNING, 'worker-a'))

    def test_a_claim_that_lost_the_race_changes_nothing(self):
        run = queued()
        read_by_b = models.SnapshotRun.objects.get(pk=run.pk)
        runs.claim_queued('worker-a')
        # worker-b read the row as queued before worker-a's update landed.
        self.assertIsNone(runs.take('worker-b', read_by_b,
                                    state=models.RUNNING))
        run.refresh_from_db()
        self.assertEqual(run.worker, 'worker-a')

    def test_one_run_per_server_at_a_time(self):
        queued()
        second = queued()
        other = queued(server_id='server-2')
        runs.claim_queued('worker-a')
        self.assertEqual(other.pk, runs.claim_queued('worker-b').pk)
        self.assertIsNone(runs.claim_queued('worker-c'))
        second.refresh_from_db()
        self.assertEqual(second.state, models.QUEUED)

    def test_the_database_keeps_one_run_per_server(self):
        # Both runs were read as queued before either was claimed: the
        # second claim collides on the server the first holds.
        first, second = queued(), queued()
        self.assertIsNotNone(runs.take('worker-a', first, hold=True,
                                       state=models.RUNNING))
        self.assertIsNone(runs.take('worker-b', second, hold=True,
                                    state=models.RUNNING))
        second.refresh_from_db()
        self.assertEqual((second.state, second.worker, second.claim),
                         (models.QUEUED, '', ''))

    def test_a_run_that_beat_with_the_databases_clock_is_recovered(self):
        # SQLite's NOW() keeps milliseconds: the claim must not compare the
        # heartbeat it read (microseconds) for equality.
        run = queued()
        runs.claim_queued('worker-a')
        time.sleep(0.05)
        taken = runs.claim_stale('worker-b', stale_s=0.01)
        self.assertEqual((run.pk, 'worker-b'), (taken.pk, taken.worker))

    def test_staleness_is_the_databases_time_not_the_hosts(self):
        queued()
        runs.claim_queued('worker-a')
        # A worker whose clock runs a day ahead recovers nothing.
        ahead = timezone.now() + datetime.timedelta(days=1)
        with mock.patch.object(timezone, 'now', return_value=ahead):
            self.assertIsNone(runs.claim_stale('worker-b', stale_s=30))

    def test_only_a_run_whose_heartbeat_stopped_is_recovered(self):
        run = queued()
        runs.claim_queued('worker-a')
        self.assertIsNone(runs.claim_stale('worker-b', stale_s=30))
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        taken = runs.claim_stale('worker-b', stale_s=30)
        self.assertEqual((taken.pk, taken.worker, taken.state),
                         (run.pk, 'worker-b', models.RUNNING))


class FencingTests(TestCase):
    """A worker that lost its run (another recovered it) changes nothing."""

    def lose(self):
        run = queued(trust_id='trust-1')
        mine = runs.claim_queued('worker-a')
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        theirs = runs.claim_stale('worker-b', stale_s=30)
        return mine, theirs

    def test_the_old_workers_records_are_refused(self):
        mine, theirs = self.lose()
        with self.assertRaises(errors.Superseded):
            runs.Recorder(mine)(events.Event(events.PLAN, events.DONE,
                                             drives=('/dev/vda',)))
        theirs.refresh_from_db()
        self.assertEqual(([], {}), (theirs.events, theirs.drives))

    def test_the_old_worker_neither_ends_the_run_nor_deletes_its_trust(self):
        mine, theirs = self.lose()
        executor = runs.Executor('worker-a', None, lambda: None)
        with mock.patch.object(runs.credentials, 'delete_trust') as delete, \
                self.assertRaises(errors.Superseded):
            executor._end(mine, models.FAILED, error='late')
        delete.assert_not_called()
        theirs.refresh_from_db()
        self.assertEqual((models.RUNNING, 'trust-1', ''),
                         (theirs.state, theirs.trust_id, theirs.error))

    def test_the_old_workers_heartbeat_stops_and_its_waits_end(self):
        mine, _ = self.lose()
        beat = runs.Heartbeat(mine, interval_s=0)
        beat.stopped = mock.Mock(wait=lambda timeout: False)
        with mock.patch.object(runs.connection, 'close'):
            beat._beat()
        self.assertTrue(beat.lost.is_set())
        with self.assertRaises(errors.Superseded):
            runs.FencedClock(beat).sleep(60)

    def test_a_superseded_execution_ends_nothing(self):
        mine, theirs = self.lose()
        executor = runs.Executor('worker-a', lambda trust: None, None)
        with mock.patch.object(runs.run_module, 'create_snapshot_set',
                               side_effect=errors.Superseded('lost')), \
                mock.patch.object(runs.Executor, '_end') as end:
            executor.execute(mine)
        end.assert_not_called()


class RecorderTests(TestCase):
    def test_every_step_drive_resource_and_window_is_recorded(self):
        run = queued()
        record = runs.Recorder(run)
        event = events.Event
        record(event(events.PLAN, events.DONE,
                     drives=('/dev/vda', '/dev/vdb')))
        record(event(events.OPEN_WINDOW, events.STARTED,
                     window={'kind': 'AgentFreezeWindow', 'lease': None}))
        run.refresh_from_db()
        self.assertEqual(run.window['kind'], 'AgentFreezeWindow')
        record(event(events.OPEN_WINDOW, events.DONE,
                     window={'kind': 'AgentFreezeWindow', 'lease': 'l1'}))
        record(event(events.RESOURCE, events.DONE,
                     resource=events.Resource(events.AGENT_COPY, 'c1')))
        record(event(events.RESOURCE, events.DONE,
                     resource=events.Resource(events.VOLUME_SNAPSHOT,
                                              's1')))
        record(event(events.CAPTURE, events.STARTED, device='/dev/vdb'))
        record(event(events.CLOSE_WINDOW, events.STARTED))
        stored = models.SnapshotRun.objects.get(pk=run.pk)
        self.assertEqual(stored.window['lease'], 'l1')
        # While the guest is held the database is written only for what
        # the recovery cannot find by the run's tag: the agent's copy.
        self.assertEqual(stored.resources, [{'kind': 'agent-copy',
                                             'id': 'c1'}])
        self.assertEqual(stored.drives, {'/dev/vda': 'queued',
                                         '/dev/vdb': 'queued'})
        self.assertEqual(stored.step, events.OPEN_WINDOW)
        record(event(events.CLOSE_WINDOW, events.DONE, window_ms=300))
        run.refresh_from_db()
        self.assertIsNone(run.window)
        self.assertEqual(run.drives, {'/dev/vda': 'queued',
                                      '/dev/vdb': 'capturing'})
        self.assertEqual(run.resources, [
            {'kind': 'agent-copy', 'id': 'c1'},
            {'kind': 'volume-snapshot', 'id': 's1'}])
        self.assertEqual(8, len(run.events))
        # The page shows each event in words; the fields stay typed.
        self.assertEqual(('/dev/vda, /dev/vdb', ['/dev/vda', '/dev/vdb']),
                         (run.events[0]['detail'], run.events[0]['drives']))
        self.assertEqual((300, '300 ms'), (run.events[-1]['window_ms'],
                                           run.events[-1]['detail']))

    def test_a_drive_name_with_a_comma_is_one_drive(self):
        # Drives travel as a list, so no name is split or joined.
        run = queued()
        runs.Recorder(run)(events.Event(events.PLAN, events.DONE,
                                        drives=('/dev/vda', 'odd, name')))
        run.refresh_from_db()
        self.assertEqual(['/dev/vda', 'odd, name'], sorted(run.drives))


class LegacyResourcesMigrationTests(TestCase):
    def test_resources_recorded_as_text_become_typed_records(self):
        migration = importlib.import_module(
            'snapshot_dashboard.migrations.0003_typed_resources')
        run = queued(resources=['delete volume snapshot s1',
                                'remove capture c1', 'delete image i1',
                                {'kind': 'image', 'id': 'i2'}])
        migration.forwards(django_apps, mock.Mock(connection=connection))
        run.refresh_from_db()
        self.assertEqual(
            [('volume-snapshot', 's1'), ('agent-copy', 'c1'),
             ('image', 'i1'), ('image', 'i2')],
            [(r['kind'], r['id']) for r in run.resources])
        self.assertEqual(['c1'], run.resource_ids(events.AGENT_COPY))


class EndTests(TestCase):
    def test_what_a_recovery_did_stays_on_the_finished_run(self):
        run = queued(cleanup='window: thaw; deleted: volume snapshot s1')
        executor = runs.Executor('worker-a', None, None)
        executor._end(run, models.SUCCEEDED, set_id='set-1', cleanup='')
        run.refresh_from_db()
        self.assertEqual('window: thaw; deleted: volume snapshot s1',
                         run.cleanup)
        executor._end(run, models.FAILED, cleanup='could not undo: x')
        run.refresh_from_db()
        self.assertEqual('window: thaw; deleted: volume snapshot s1; '
                         'could not undo: x', run.cleanup)


class BrokenScheduleTests(TestCase):
    def scheduled_run(self):
        schedule = models.Schedule.objects.create(
            project_id='p', user_id='u', server_id='server-1',
            consistency='auto', timing='hourly', cron='0 * * * *',
            name='hourly', keep_last=3, trust_id='trust-1',
            next_run_at=timezone.now())
        run = queued(schedule=schedule, trust_id='trust-1')
        return schedule, run

    def execute_failing_with(self, error):
        schedule, run = self.scheduled_run()
        executor = runs.Executor('worker-a', lambda trust: None, None)
        with mock.patch.object(runs.run_module, 'create_snapshot_set',
                               side_effect=error), \
                mock.patch.object(runs.credentials, 'delete_trust') as delete:
            executor.execute(run)
        schedule.refresh_from_db()
        run.refresh_from_db()
        return schedule, run, delete

    def test_a_gone_server_breaks_the_schedule(self):
        schedule, run, delete = self.execute_failing_with(
            errors.ServerNotFound('server-1'))
        self.assertEqual(run.state, models.FAILED)
        self.assertIn('server is gone', schedule.broken_reason)
        self.assertIsNone(schedule.next_run_at)
        self.assertEqual([], schedules.fire_due(
            timezone.now() + datetime.timedelta(days=1)))
        # The schedule's trust is the schedule's: a run does not delete it.
        delete.assert_not_called()

    def test_a_gone_trust_breaks_the_schedule(self):
        schedule, run, _ = self.execute_failing_with(
            ks_exceptions.Unauthorized('trust not found'))
        self.assertIn('trust', schedule.broken_reason)
        self.assertIn('expired or was revoked', run.error)

    def test_a_failure_whose_rollback_failed_does_not_say_nothing_was_kept(
            self):
        error = errors.CaptureFailed('Glance went away; nothing was kept.')
        error.rollback_failures = ['image i1: connection refused']
        _, run, _ = self.execute_failing_with(error)
        self.assertIn('could not be removed yet', run.error)
        self.assertIn('image i1: connection refused', run.cleanup)

    def test_any_other_failure_leaves_the_schedule_running(self):
        schedule, run, _ = self.execute_failing_with(
            errors.QuotaExceeded([]))
        self.assertEqual('', schedule.broken_reason)
        self.assertIsNotNone(schedule.next_run_at)


class HeartbeatTests(TestCase):
    def test_a_failed_beat_does_not_end_the_heartbeats(self):
        run = queued(worker='worker-a')
        beat = runs.Heartbeat(run, interval_s=0)
        waits = iter([False, False, True])
        beat.stopped = mock.Mock(wait=lambda timeout: next(waits))
        tried = []
        real_filter = models.SnapshotRun.objects.filter

        def flaky(*args, **kwargs):
            tried.append(args or kwargs)
            if len(tried) == 1:
                raise OperationalError('server has gone away')
            return real_filter(*args, **kwargs)
        with mock.patch.object(models.SnapshotRun.objects, 'filter',
                               side_effect=flaky), \
                mock.patch.object(runs.connection, 'close'):
            beat._beat()
        run.refresh_from_db()
        self.assertEqual(2, len(tried))
        self.assertIsNotNone(run.heartbeat_at)

    def test_a_worker_cut_off_from_the_database_stops_acting(self):
        # Before another worker can recover the run, this one gives it up:
        # its records and its waits end with Superseded.
        run = queued(worker='worker-a')
        beat = runs.Heartbeat(run, interval_s=0, lost_after_s=0)
        beat.stopped = mock.Mock(wait=lambda timeout: False)
        with mock.patch.object(runs, 'write', side_effect=OperationalError(
                'server has gone away')), \
                mock.patch.object(runs.connection, 'close'):
            beat._beat()
        self.assertTrue(beat.lost.is_set())
        with self.assertRaises(errors.Superseded):
            runs.Recorder(run, beat)(events.Event(events.PLAN,
                                                  events.STARTED))
        with self.assertRaises(errors.Superseded):
            runs.FencedClock(beat).sleep(60)

    def test_pruning_and_ending_happen_under_the_heartbeat(self):
        schedule = models.Schedule.objects.create(
            project_id='p', user_id='u', server_id='server-1',
            consistency='auto', timing='hourly', cron='0 * * * *',
            name='hourly', keep_last=1, trust_id='trust-1')
        run = queued(schedule=schedule, trust_id='trust-1')
        seen = []

        class Recording:
            def __init__(self, *args):
                pass

            def __enter__(self):
                seen.append('beating')

            def __exit__(self, *exc):
                seen.append('stopped')
        snapshot_set = mock.Mock(id='set-1', consistency='crash',
                                 window_ms=10, drives=[])
        executor = runs.Executor('worker-a', lambda trust: None, None)
        with mock.patch.object(runs, 'Heartbeat', Recording), \
                mock.patch.object(runs.run_module, 'create_snapshot_set',
                                  return_value=snapshot_set), \
                mock.patch.object(runs.schedules, 'prune', side_effect=(
                    lambda *a: seen.append('pruning') or ([], []))), \
                mock.patch.object(runs.Executor, '_end', side_effect=(
                    lambda *a, **k: seen.append('ending'))):
            executor.execute(run)
        self.assertEqual(['beating', 'pruning', 'ending', 'stopped'], seen)


class RecoveryTests(TransactionTestCase):
    """A run whose worker died, recovered by another, on the fake cloud
    (without a test-wide transaction: the orchestration records from its
    capture threads too)."""

    def setUp(self):
        from tests.unit import fakes
        self.fakes = fakes
        self.cloud = fakes.FakeCloud()
        self.server = self.cloud.add_server(volumes=[('/dev/vdb', 1)])
        self.executor = runs.Executor('worker-b', lambda trust: None,
                                      lambda: None)
        self.executor.clients = lambda run: self.cloud
        self.executor.clock = fakes.FakeClock(self.cloud)

    def dead_run(self, until):
        """A run killed once ``until(event)`` said so."""
        run = queued(server_id=self.server, trust_id='trust-1')
        run = runs.claim_queued('worker-a')
        recorder = runs.Recorder(run)

        class Killed(BaseException):
            pass

        dead = []

        def progress(event):
            if dead:
                return  # a dead process records nothing
            recorder(event)
            if until(event):
                dead.append(event)
                raise Killed
        with self.assertRaises(Killed):
            from snapshot_dashboard.orchestration import run as run_module
            # Died: neither the window's close nor the rollback ran.
            with mock.patch.object(run_module.Rollback, 'run'), \
                    mock.patch.object(run_module.window_module
                                      .NovaPauseWindow, 'close'):
                run_module.create_snapshot_set(
                    self.cloud, self.server, consistency='crash', wait=True,
                    run_id=str(run.pk), progress=progress,
                    clock=self.fakes.FakeClock(self.cloud))
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        return runs.claim_stale('worker-b', stale_s=30)

    def recover(self, run):
        clock = self.fakes.FakeClock(self.cloud)
        with mock.patch.object(runs, 'FencedClock', lambda *a: clock), \
                mock.patch.object(runs.credentials, 'delete_trust',
                                  return_value=True):
            self.executor.recover(run)
        run.refresh_from_db()
        return run

    def test_a_set_packaged_before_the_worker_died_is_kept(self):
        run = self.dead_run(lambda e: e.step == events.UPLOAD)
        self.assertTrue(run.set_id)
        run = self.recover(run)
        self.assertEqual((models.SUCCEEDED, run.set_id), (run.state,
                                                          run.set_id))
        self.assertIn(run.set_id, self.cloud.images)
        self.assertEqual(1, len(self.cloud.snapshots))
        self.assertIsNone(run.holding_server)

    def test_a_pause_begun_but_never_recorded_open_is_released(self):
        # Killed inside the pause: only the intent was recorded.
        run = self.dead_run(lambda e: e.step == events.OPEN_WINDOW
                            and e.state == events.STARTED)
        self.assertEqual(run.window, {'kind': 'NovaPauseWindow'})
        self.cloud.nova.servers.pause(self.server)  # it landed
        self.cloud.tick()
        run = self.recover(run)
        self.assertEqual('ACTIVE', self.cloud.server_status(self.server))
        self.assertEqual((models.QUEUED, None), (run.state,
                                                 run.holding_server))

    def test_a_release_nova_refuses_is_kept_and_retried(self):
        run = self.dead_run(lambda e: e.step == events.CAPTURE
                            and e.state == events.DONE)
        self.cloud.fail_at.add('nova.unpause')
        run = self.recover(run)
        # Ended, but still holding its server and its trust.
        self.assertEqual((models.FAILED, self.server, 'trust-1'),
                         (run.state, run.holding_server, run.trust_id))
        self.assertEqual({}, self.cloud.snapshots)
        self.assertIsNone(runs.claim_queued('worker-c'))
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        self.cloud.fail_at.clear()
        again = runs.claim_unreleased('worker-c', stale_s=30)
        self.executor.release(again)
        self.assertEqual('ACTIVE', self.cloud.server_status(self.server))
        again.refresh_from_db()
        self.assertEqual((None, None), (again.holding_server, again.window))


class ReaperTests(TestCase):
    def test_a_run_is_live_until_it_ended_and_let_its_server_go(self):
        from snapshot_dashboard.worker import service
        run = queued()
        self.assertTrue(service.is_live(str(run.pk)))
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            state=models.FAILED, holding_server='server-1')
        self.assertTrue(service.is_live(str(run.pk)))  # a hold to release
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            holding_server=None)
        self.assertFalse(service.is_live(str(run.pk)))
        # A CLI run has no row; a crafted tag is no run.
        self.assertFalse(service.is_live(
            '7d0c1c7e-0000-4000-8000-000000000000'))
        self.assertFalse(service.is_live('not-a-uuid'))

    def test_what_is_reaped_is_recorded_for_admins(self):
        from snapshot_dashboard.worker import service
        from tests.unit import fakes
        from tests.unit import test_reaper
        cloud = fakes.FakeCloud()
        server = cloud.add_server(volumes=[('/dev/vdb', 1)])
        ended = queued(state=models.FAILED)
        left = test_reaper.dead_run(cloud, server, str(ended.pk))
        live = queued(server_id='server-2')
        kept = test_reaper.dead_run(cloud, server, str(live.pk))
        records = service.reap(cloud, now=test_reaper.A_DAY_LATER)
        self.assertEqual(left, {r.resource_id for r in records})
        self.assertEqual(
            {(str(ended.pk), 'deleted')},
            set(models.ReapedResource.objects.values_list('run_id',
                                                          'outcome')))
        self.assertTrue(kept <= set(cloud.snapshots) | set(cloud.images))

    def test_what_could_not_be_reaped_is_recorded_as_not_deleted(self):
        from snapshot_dashboard.worker import service
        from tests.unit import fakes
        from tests.unit import test_reaper
        cloud = fakes.FakeCloud()
        server = cloud.add_server(volumes=[('/dev/vdb', 1)])
        ended = queued(state=models.FAILED)
        test_reaper.dead_run(cloud, server, str(ended.pk))
        cloud.fail_at.add('cinder.snapshot_delete')
        records = {r.kind: r for r in service.reap(
            cloud, now=test_reaper.A_DAY_LATER)}
        snapshot = records['volume-snapshot']
        self.assertFalse(snapshot.deleted)
        self.assertTrue(snapshot.outcome.startswith('not deleted: '))
        self.assertTrue(records['image'].deleted)


class RestoreRunTests(TransactionTestCase):
    """A restore run executed by the worker, and recovered after its
    worker died, on the fake cloud."""

    def setUp(self):
        from snapshot_dashboard.orchestration import run as run_module
        from tests.unit import fakes
        self.fakes = fakes
        self.cloud = fakes.FakeCloud()
        self.server = self.cloud.add_server(volumes=[('/dev/vdb', 1)])
        self.other = self.cloud.add_server(name='other')
        self.set = run_module.create_snapshot_set(
            self.cloud, self.server, consistency='crash', wait=True,
            clock=fakes.FakeClock(self.cloud))
        self.executor = runs.Executor('worker-b', lambda trust: None,
                                      lambda: None)
        self.executor.clients = lambda run: self.cloud
        self.clock = fakes.FakeClock(self.cloud)

    def queue(self, devices=None):
        return models.SnapshotRun.queue_restore(
            project_id='p', user_id='u', user_name='demo',
            snapshot_set=self.set, devices=devices, attach_to=self.other,
            trust_id='trust-1')

    def act(self, act, run):
        with mock.patch.object(runs, 'FencedClock', lambda *a: self.clock), \
                mock.patch.object(runs.credentials, 'delete_trust',
                                  return_value=True):
            act(run)
        run.refresh_from_db()
        return run

    def restored(self):
        from snapshot_dashboard.orchestration import properties
        return {vid: v for vid, v in self.cloud.volumes.items()
                if properties.RESTORED_FROM in v['metadata']}

    def test_a_restore_takes_no_server_and_records_every_drive(self):
        create = queued(server_id=self.set.server_id)
        runs.claim_queued('worker-a')
        restore_run = self.queue(['/dev/vdb'])
        claimed = runs.claim_queued('worker-b')
        # The set's server is busy with a snapshot; a restore holds none.
        self.assertEqual(restore_run.pk, claimed.pk)
        self.assertIsNone(claimed.holding_server)
        run = self.act(self.executor.execute, claimed)
        self.assertEqual(run.state, models.SUCCEEDED, run.error)
        self.assertEqual(run.drives, {'/dev/vdb': 'attached'})
        self.assertEqual(run.set_id, self.set.id)
        (volume_id, volume), = self.restored().items()
        self.assertEqual([{'kind': events.VOLUME, 'id': volume_id},
                          {'kind': events.ATTACHMENT, 'id': volume_id}],
                         run.resources)
        self.assertEqual(volume['status'], 'in-use')
        self.assertEqual(create.pk, models.SnapshotRun.objects.get(
            holding_server=self.set.server_id).pk)

    def test_a_failed_restore_says_why_and_keeps_nothing(self):
        self.cloud.fail_at.add('nova.attach')
        self.queue()
        run = self.act(self.executor.execute, runs.claim_queued('worker-b'))
        self.assertEqual(run.state, models.FAILED)
        self.assertIn('could not be restored', run.error)
        self.assertEqual({}, self.restored())

    def dead_restore(self, until):
        from snapshot_dashboard.orchestration import restore
        self.queue()
        run = runs.claim_queued('worker-a')
        recorder = runs.Recorder(run)

        class Killed(BaseException):
            pass

        def progress(event):
            recorder(event)
            if until(event):
                raise Killed
        with self.assertRaises(Killed), \
                mock.patch.object(restore.run_module.Rollback, 'run'):
            restore.restore_as_volumes(
                self.cloud, self.set.id, attach_to=self.other,
                run_id=str(run.pk), progress=progress, clock=self.clock)
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        return runs.claim_stale('worker-b', stale_s=30)

    def test_a_restore_killed_midway_is_undone_and_queued_again(self):
        run = self.dead_restore(lambda e: e.step == events.ATTACH
                                and e.state == events.DONE)
        self.assertTrue(self.restored())
        run = self.act(self.executor.recover, run)
        self.assertEqual(run.state, models.QUEUED)
        self.assertEqual({}, self.restored())
        self.assertEqual([], self.cloud.attachments[self.other])
        self.assertIn('deleted: volume', run.cleanup)

    def test_a_restore_killed_after_delivering_is_kept_and_done(self):
        from snapshot_dashboard.orchestration import properties
        original = self.cloud.cinder.volumes.set_metadata
        marked = []

        class Died(BaseException):
            pass

        def set_metadata(volume_id, metadata):
            original(volume_id, metadata)
            marked.append(volume_id)
            if len(marked) == 1:
                raise Died  # after marking the first of two volumes
        # The set has two drives, vda (an image) and vdb (a volume).
        with mock.patch.object(self.cloud.cinder.volumes, 'set_metadata',
                               set_metadata):
            with self.assertRaises(Died):
                self.dead_restore(lambda e: False)
        models.SnapshotRun.objects.update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        run = runs.claim_stale('worker-b', stale_s=30)
        run = self.act(self.executor.recover, run)
        self.assertEqual(run.state, models.SUCCEEDED, run.error)
        self.assertEqual(run.drives, {'/dev/vda': 'attached',
                                      '/dev/vdb': 'attached'})
        self.assertEqual(2, len(self.restored()))
        self.assertTrue(all(v['metadata'].get(properties.DELIVERED)
                            for v in self.restored().values()))

    def test_a_restore_that_delivered_only_some_drives_says_which(self):
        from snapshot_dashboard.orchestration import properties
        self.queue()
        run = runs.claim_queued('worker-a')
        from snapshot_dashboard.orchestration import restore
        restore.restore_as_volumes(
            self.cloud, self.set.id, attach_to=self.other,
            run_id=str(run.pk), progress=runs.Recorder(run),
            clock=self.clock)
        # The worker died while a rollback removed one volume (vdb).
        (vdb,) = [vid for vid, v in self.restored().items() if v[
            'metadata'][properties.RESTORED_FROM].endswith('/dev/vdb')]
        self.cloud.nova.volumes.delete_server_volume(self.other, vdb)
        del self.cloud.volumes[vdb]
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        run = self.act(self.executor.recover,
                       runs.claim_stale('worker-b', stale_s=30))
        self.assertEqual(run.state, models.FAILED)
        self.assertIn('/dev/vda restored and kept; /dev/vdb not', run.error)
        self.assertEqual(1, len(self.restored()))


class InPlaceRunTests(TransactionTestCase):
    """A restore in place executed by the worker, holding its server, and
    recovered after its worker died, on the fake cloud and agent."""

    def setUp(self):
        from snapshot_dashboard.orchestration import run as run_module
        from tests.unit import fakes
        self.cloud = fakes.FakeCloud()
        self.server = self.cloud.add_server(ephemeral_gb=1,
                                            volumes=[('/dev/vdc', 1)])
        self.agent = fakes.FakeAgent(self.cloud, copies=True)
        self.set = run_module.create_snapshot_set(
            self.cloud, self.server, consistency='crash', wait=True,
            clock=fakes.FakeClock(self.cloud),
            agent_locator=fakes.FakeAgents(self.agent))
        self.old = self.attached()['/dev/vdc']
        self.executor = runs.Executor(
            'worker-b', lambda trust: None, lambda: None,
            agent_locator=fakes.FakeAgents(self.agent))
        self.executor.clients = lambda run: self.cloud
        self.clock = fakes.FakeClock(self.cloud)

    def attached(self):
        return {a['device']: a['volumeId']
                for a in self.cloud.attachments[self.server]}

    def queue(self):
        return models.SnapshotRun.queue_restore(
            project_id='p', user_id='u', user_name='demo',
            snapshot_set=self.set, devices=None, attach_to=None,
            trust_id='trust-1', action=models.RESTORE_IN_PLACE)

    def act(self, act, run):
        # The agent's copies of a dead run's safety set: asked to go.
        with mock.patch.object(runs.recovery, 'remove_copies',
                               return_value=[]) as remove_copies:
            run = RestoreRunTests.act(self, act, run)
        self.copies_removed = remove_copies.call_args_list
        return run

    def test_it_holds_its_server_and_records_its_undo(self):
        restore_run = self.queue()
        claimed = runs.claim_queued('worker-b')
        self.assertEqual(restore_run.pk, claimed.pk)
        self.assertEqual(claimed.holding_server, self.server)
        # A set of the same server waits for the restore.
        queued(server_id=self.server)
        self.assertIsNone(runs.claim_queued('worker-a'))
        run = self.act(self.executor.execute, claimed)
        self.assertEqual(run.state, models.SUCCEEDED, run.error)
        self.assertIsNone(run.holding_server)
        self.assertEqual(run.drives, {'/dev/vda': 'restored',
                                      '/dev/vdb': 'restored',
                                      '/dev/vdc': 'attached'})
        from snapshot_dashboard.orchestration import sets
        self.assertEqual(sets.get_set(self.cloud, run.undo_set_id).undo_of,
                         str(run.pk))
        self.assertNotEqual(self.attached()['/dev/vdc'], self.old)

    def dead_run(self, until):
        from snapshot_dashboard.orchestration import inplace
        self.queue()
        run = runs.claim_queued('worker-a')
        recorder = runs.Recorder(run)

        class Killed(BaseException):
            pass

        def progress(event):
            recorder(event)
            if until(event):
                raise Killed
        with self.assertRaises(Killed), \
                mock.patch.object(inplace.run_module.Rollback, 'run'):
            inplace.restore_in_place(
                self.cloud, self.set.id, run_id=str(run.pk),
                progress=progress, clock=self.clock,
                agent_locator=self.executor.agent_locator)
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        return runs.claim_stale('worker-b', stale_s=30)

    def test_a_safety_set_a_recovery_keeps_is_not_removed(self):
        """The old volume cannot go back where it was: the safety set
        holds the drives as they were, and stays."""
        from snapshot_dashboard.orchestration import sets
        run = self.dead_run(lambda e: e.step == events.WRITE
                            and e.state == events.DONE)
        self.cloud.fail_at.add('nova.attach')
        run = self.act(self.executor.recover, run)
        self.assertEqual(run.state, models.FAILED)
        self.assertIn('could not be put back entirely', run.error)
        (safety,) = [s for s in sets.list_sets(self.cloud) if s.undo_of]
        self.assertEqual(safety.undo_of, str(run.pk))
        self.assertEqual(sets.AVAILABLE, safety.status)
        self.assertEqual(run.undo_set_id, safety.id)

    def test_a_restore_killed_midway_puts_the_server_back(self):
        from snapshot_dashboard.orchestration import restore
        run = self.dead_run(lambda e: e.step == events.WRITE
                            and e.state == events.DONE)
        self.assertEqual(self.cloud.server_status(self.server), 'SHUTOFF')
        run = self.act(self.executor.recover, run)
        self.assertEqual(run.state, models.FAILED)
        self.assertIn('the server was put back as it was', run.error)
        self.assertEqual(run.undo_set_id, '')  # deleted with the rest
        self.assertEqual(self.attached(), {'/dev/vdc': self.old})
        self.assertEqual(self.cloud.server_status(self.server), 'ACTIVE')
        # Rebuilt from the set, then back from the safety set, whose
        # ephemeral copy was written back last.
        self.assertEqual(2, len(self.cloud.rebuilds))
        self.assertEqual([], restore.tagged_volumes(self.cloud.cinder,
                                                    str(run.pk)))
        self.assertEqual([self.set.id], [
            i for i, image in self.cloud.images.items()
            if image.get('snapshot_set_id') == i])

    def test_a_restore_killed_while_taking_its_safety_set_changed_nothing(
            self):
        run = self.dead_run(lambda e: e.step == events.CLOSE_WINDOW
                            and e.state == events.DONE)
        run = self.act(self.executor.recover, run)
        self.assertEqual(run.state, models.FAILED)
        self.assertIn('nothing had been changed yet', run.error)
        self.assertEqual(self.attached(), {'/dev/vdc': self.old})
        self.assertEqual([], self.cloud.rebuilds)
        # Its copies on the compute node are asked to go, its snapshots
        # are deleted.
        self.assertEqual(1, len(self.copies_removed))
        self.assertEqual(set(self.set.snapshot_ids),
                         set(self.cloud.snapshots))

    def test_a_restore_that_finished_before_its_worker_died_is_kept(self):
        from snapshot_dashboard.orchestration import inplace
        self.queue()
        run = runs.claim_queued('worker-a')
        inplace.restore_in_place(
            self.cloud, self.set.id, run_id=str(run.pk),
            progress=runs.Recorder(run), clock=self.clock,
            agent_locator=self.executor.agent_locator)
        new = self.attached()['/dev/vdc']
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        run = self.act(self.executor.recover,
                       runs.claim_stale('worker-b', stale_s=30))
        self.assertEqual(run.state, models.SUCCEEDED, run.error)
        self.assertEqual(self.attached(), {'/dev/vdc': new})
        self.assertEqual(1, len(self.cloud.rebuilds))
        # Its undo is there to use.
        from snapshot_dashboard.orchestration import sets
        self.assertEqual(sets.get_set(self.cloud, run.undo_set_id).undo_of,
                         str(run.pk))
        self.assertEqual(sets.AVAILABLE, sets.get_set(
            self.cloud, run.undo_set_id).status)
