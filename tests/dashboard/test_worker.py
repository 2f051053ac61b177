"""Claiming runs and recording them, on the test database."""

import datetime
import importlib
from unittest import mock

from django.apps import apps as django_apps
from django.db import OperationalError
from django.test import TestCase
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

    def test_only_a_run_whose_heartbeat_stopped_is_recovered(self):
        run = queued()
        runs.claim_queued('worker-a')
        self.assertIsNone(runs.claim_stale('worker-b', stale_s=30))
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - datetime.timedelta(seconds=31))
        taken = runs.claim_stale('worker-b', stale_s=30)
        self.assertEqual((taken.pk, taken.worker, taken.state),
                         (run.pk, 'worker-b', models.RUNNING))


class RecorderTests(TestCase):
    def test_every_step_drive_resource_and_window_is_recorded(self):
        run = queued()
        record = runs.Recorder(run)
        event = events.Event
        record(event(events.PLAN, events.DONE,
                     drives=('/dev/vda', '/dev/vdb')))
        record(event(events.OPEN_WINDOW, events.DONE,
                     window={'kind': 'AgentFreezeWindow', 'lease': 'l1'}))
        record(event(events.RESOURCE, events.DONE,
                     resource=events.Resource(events.VOLUME_SNAPSHOT,
                                              's1')))
        record(event(events.CAPTURE, events.STARTED, device='/dev/vdb'))
        run.refresh_from_db()
        self.assertEqual(run.drives, {'/dev/vda': 'queued',
                                      '/dev/vdb': 'capturing'})
        self.assertEqual(run.window['lease'], 'l1')
        self.assertEqual(run.resources,
                         [{'kind': 'volume-snapshot', 'id': 's1'}])
        self.assertEqual(run.step, 'capture')
        record(event(events.CLOSE_WINDOW, events.DONE, window_ms=300))
        run.refresh_from_db()
        self.assertIsNone(run.window)
        self.assertEqual(5, len(run.events))
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
        migration.forwards(django_apps, None)
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
                mock.patch.object(runs.Executor, '_delete_trust') as delete:
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

    def test_any_other_failure_leaves_the_schedule_running(self):
        schedule, run, _ = self.execute_failing_with(
            errors.QuotaExceeded([]))
        self.assertEqual('', schedule.broken_reason)
        self.assertIsNotNone(schedule.next_run_at)


class HeartbeatTests(TestCase):
    def test_a_failed_beat_does_not_end_the_heartbeats(self):
        run = queued(worker='worker-a')
        beat = runs.Heartbeat(run, 'worker-a', interval_s=0)
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
