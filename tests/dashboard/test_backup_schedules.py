"""Project > Compute > Backup Schedules: the table, the forms, the actions,
and the worker firing schedules, with the API layer mocked the way
Horizon's own tests do."""

import dataclasses
import datetime
from unittest import mock
import zoneinfo

from django.test import TestCase as DjangoTestCase
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone
from openstack_dashboard.test import helpers as horizon_helpers

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.worker import schedules
from tests.dashboard import helpers

INDEX_URL = reverse('horizon:project:backup_schedules:index')


def trust(trust_id='trust-9'):
    return type('Trust', (), {'id': trust_id})


def schedule_of(project_id, **fields):
    values = {'project_id': project_id, 'user_id': 'u', 'server_id': 'srv',
              'server_name': 'web', 'devices': None, 'consistency': 'auto',
              'timing': 'daily', 'minute': 30, 'hour': 2,
              'cron': '30 2 * * *', 'timezone': 'Europe/Paris',
              'name': 'nightly', 'keep_last': 7, 'trust_id': 'trust-1',
              'next_run_at': timezone.now() + datetime.timedelta(hours=3)}
    values.update(fields)
    return models.Schedule.objects.create(**values)


class ScheduleFormTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.server = self.servers.first()
        self.url = reverse('horizon:project:backup_schedules:create',
                           args=[self.server.id])

    def post(self, **changes):
        data = {'instance_id': self.server.id, 'name': 'nightly',
                'all_drives': '', 'devices': ['/dev/vda', '/dev/vdc'],
                'consistency': 'auto', 'timing': 'daily', 'hour': 2,
                'minute': 30, 'weekday': 0, 'cron': '',
                'timezone': 'Europe/Paris',
                'name_template': '{server} {schedule} {time}',
                'keep_last': 7, 'keep_daily': 0, 'keep_weekly': 4,
                'keep_monthly': 0}
        data.update(changes)
        return self.client.post(self.url, data)

    @horizon_helpers.create_mocks({api: ['preflight']})
    def test_the_form_has_one_checkbox_per_drive(self):
        self.mock_preflight.return_value = self.preflights.first()
        res = self.client.get(self.url)
        self.assertTemplateUsed(
            res, 'snapshot_dashboard/backup_schedules/schedule.html')
        self.assertEqual(['/dev/vda', '/dev/vdb', '/dev/vdc'], [
            value for value, _ in res.context['form'].fields[
                'devices'].choices])
        self.assertContains(res, '/dev/vdc - volume - data - 2 GB')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_create_saves_the_schedule_with_a_trust(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        self.mock_create_trust.return_value = trust()
        res = self.post()
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        schedule = models.Schedule.objects.get()
        self.assertEqual(
            (schedule.server_id, schedule.devices, schedule.cron,
             schedule.timezone, schedule.trust_id, schedule.keep_weekly,
             schedule.project_id),
            (self.server.id, ['/dev/vda', '/dev/vdc'], '30 2 * * *',
             'Europe/Paris', 'trust-9', 4, self.tenant.id))
        self.assertGreater(schedule.next_run_at, timezone.now())
        (caller,), _ = self.mock_create_trust.call_args
        self.assertEqual((caller.user_id, caller.project_id),
                         (self.user.id, self.tenant.id))

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_all_drives_follows_drives_attached_later(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        self.mock_create_trust.return_value = trust()
        self.assertNoFormErrors(self.post(all_drives='on', devices=[]))
        self.assertIsNone(models.Schedule.objects.get().devices)
        self.mock_check_selection.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), self.server.id, None)

    def assert_refused(self, res, message):
        self.assertContains(res, message)
        self.assertEqual(0, models.Schedule.objects.count())
        self.mock_create_trust.assert_not_called()

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_a_malformed_cron_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        self.assert_refused(self.post(timing='cron', cron='61 * * * *'),
                            'Not a valid cron expression')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_a_cron_firing_more_often_than_allowed_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        with override_settings(
                SNAPSHOT_DASHBOARD_MIN_SCHEDULE_INTERVAL_S=3600):
            res = self.post(timing='cron', cron='*/10 * * * *')
        self.assert_refused(res, 'the shortest interval allowed here is '
                                 '1 h')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_retention_all_zero_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        self.assert_refused(self.post(keep_last=0, keep_weekly=0),
                            'At least one retention rule')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_an_unknown_drive_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.assert_refused(self.post(devices=['/dev/vdz']),
                            'Select a valid choice')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_a_consistency_the_server_cannot_have_is_refused(self):
        # Saved, it would fail at every fire: refused before it is saved.
        self.mock_preflight.return_value = dataclasses.replace(
            self.preflights.first(), refused={
                'application': 'Application consistency is not possible '
                               'for server server_1: no compute-side agent '
                               'is configured.'})
        self.mock_check_selection.return_value = []
        self.assert_refused(self.post(consistency='application'),
                            'no compute-side agent is configured')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_another_projects_server_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.side_effect = errors.ServerNotFound(
            self.server.id)
        self.assert_refused(self.post(), 'in your project')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_a_name_template_with_unknown_fields_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        self.assert_refused(self.post(name_template='{host} {time}'),
                            'Set names may use')

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection']})
    def test_edit_changes_the_timing_and_keeps_the_trust(self):
        schedule = schedule_of(self.tenant.id, server_id=self.server.id)
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        url = reverse('horizon:project:backup_schedules:edit',
                      args=[schedule.id])
        res = self.client.get(url)
        self.assertEqual('nightly', res.context['form'].initial['name'])
        res = self.client.post(url, {
            'schedule_id': str(schedule.id), 'instance_id': self.server.id,
            'name': 'weekly', 'all_drives': 'on', 'consistency': 'crash',
            'timing': 'weekly', 'weekday': 0, 'hour': 3, 'minute': 0,
            'timezone': 'UTC', 'name_template': '{schedule} {time}',
            'keep_last': 0, 'keep_daily': 0, 'keep_weekly': 8,
            'keep_monthly': 0})
        self.assertNoFormErrors(res)
        schedule.refresh_from_db()
        self.assertEqual((schedule.cron, schedule.trust_id, schedule.name),
                         ('0 3 * * 0', 'trust-1', 'weekly'))


class ScheduleTableTests(helpers.TestCase):
    def test_index_says_timing_retention_and_last_result_in_words(self):
        schedule = schedule_of(self.tenant.id, keep_weekly=4)
        models.SnapshotRun.objects.create(
            project_id=self.tenant.id, user_id='u', server_id='srv',
            consistency='auto', schedule=schedule, state=models.FAILED,
            error='Not enough quota: images.')
        schedule_of('another-project', name='not ours')
        res = self.client.get(INDEX_URL)
        self.assertEqual([schedule.id], [
            s.id for s in res.context['backup_schedules_table'].data])
        self.assertContains(res, 'Every day at 02:30 (Europe/Paris)')
        self.assertContains(res, schedule.next_run_at.astimezone(
            zoneinfo.ZoneInfo('Europe/Paris')).strftime('%Y-%m-%d %H:%M'))
        self.assertContains(res, 'keep the last 7 sets, 4 weekly')
        self.assertContains(res, 'Not enough quota: images.')
        self.assertNotContains(res, 'not ours')

    def post_action(self, action, schedule):
        return self.client.post(INDEX_URL, {
            'action': 'backup_schedules__%s__%s' % (action, schedule.id)})

    def test_pause_and_resume(self):
        schedule = schedule_of(self.tenant.id)
        self.post_action('pause', schedule)
        schedule.refresh_from_db()
        self.assertEqual((schedule.enabled, schedule.next_run_at),
                         (False, None))
        self.post_action('resume', schedule)
        schedule.refresh_from_db()
        self.assertTrue(schedule.enabled)
        self.assertGreater(schedule.next_run_at, timezone.now())

    def test_run_now_queues_a_run_and_keeps_the_timing(self):
        schedule = schedule_of(self.tenant.id)
        before = schedule.next_run_at
        self.post_action('run_now', schedule)
        run = models.SnapshotRun.objects.get()
        self.assertEqual((run.schedule_id, run.trust_id, run.state),
                         (schedule.id, 'trust-1', models.QUEUED))
        schedule.refresh_from_db()
        self.assertEqual(before, schedule.next_run_at)

    @mock.patch.object(credentials.keystone_client, 'Client')
    def test_delete_deletes_the_trust_and_keeps_the_sets(self, keystone):
        schedule = schedule_of(self.tenant.id)
        self.post_action('delete', schedule)
        self.assertEqual(0, models.Schedule.objects.count())
        keystone.return_value.trusts.delete.assert_called_once_with(
            'trust-1')

    def test_another_projects_schedule_cannot_be_touched(self):
        schedule = schedule_of('another-project')
        self.post_action('pause', schedule)
        schedule.refresh_from_db()
        self.assertTrue(schedule.enabled)

    @horizon_helpers.create_mocks({api: ['list_sets']})
    def test_detail_shows_history_and_what_retention_deletes_next(self):
        schedule = schedule_of(self.tenant.id, keep_last=2)
        made = [sets.SnapshotSet(
            id='set-%d' % day, name='set %d' % day, server_id='srv',
            run_id='r', consistency='crash', requested_consistency='auto',
            window_ms=1, drives=[], schedule_id=str(schedule.id),
            created_at='2026-11-2%dT02:30:00Z' % day) for day in (1, 2, 3)]
        by_hand = sets.SnapshotSet(
            id='by-hand', name='by hand', server_id='srv', run_id='r',
            consistency='crash', requested_consistency='auto', window_ms=1,
            drives=[], created_at='2026-11-01T00:00:00Z')
        self.mock_list_sets.return_value = made + [by_hand]
        models.SnapshotRun.objects.create(
            project_id=self.tenant.id, user_id='u', server_id='srv',
            consistency='auto', schedule=schedule, state=models.SUCCEEDED,
            set_id='set-3')
        res = self.client.get(reverse(
            'horizon:project:backup_schedules:detail', args=[schedule.id]))
        # With the next run's set the two newest stay: set-1 and set-2 go.
        self.assertEqual(['set-1', 'set-2'], sorted(
            s.id for s in res.context['doomed_table'].data))
        self.assertEqual(['set-3'], [
            r.set_id for r in res.context['runs_table'].data])


class FiringTests(DjangoTestCase):
    def test_a_due_schedule_fires_once_with_several_workers(self):
        now = timezone.now()
        schedule = schedule_of('p', cron='*/5 * * * *',
                               next_run_at=now - datetime.timedelta(
                                   seconds=1))
        first = schedules.fire_due(now)
        second = schedules.fire_due(now)
        self.assertEqual(1, len(first))
        self.assertEqual([], second)
        schedule.refresh_from_db()
        self.assertGreater(schedule.next_run_at, now)
        run = first[0]
        self.assertEqual((run.schedule_id, run.trust_id, run.devices),
                         (schedule.id, 'trust-1', None))

    def test_a_worker_that_lost_the_race_queues_nothing(self):
        now = timezone.now()
        schedule_of('p', next_run_at=now - datetime.timedelta(seconds=1))
        seen_by_slow_worker = list(schedules.due(now))
        schedules.fire_due(now)
        with mock.patch.object(schedules, 'due',
                               return_value=seen_by_slow_worker):
            self.assertEqual([], schedules.fire_due(now))
        self.assertEqual(1, models.SnapshotRun.objects.count())

    def test_missed_fires_run_once_after_downtime(self):
        now = timezone.now()
        schedule = schedule_of('p', cron='0 * * * *',
                               next_run_at=now - datetime.timedelta(days=2))
        self.assertEqual(1, len(schedules.fire_due(now)))
        self.assertEqual([], schedules.fire_due(now))
        schedule.refresh_from_db()
        self.assertLessEqual(schedule.next_run_at - now,
                             datetime.timedelta(hours=1))

    def test_paused_and_broken_schedules_do_not_fire(self):
        past = timezone.now() - datetime.timedelta(minutes=1)
        schedule_of('p', enabled=False, next_run_at=past)
        schedule_of('p', broken_reason='The server is gone.',
                    next_run_at=past)
        self.assertEqual([], schedules.fire_due())

    def test_set_names_follow_the_template_in_the_schedules_time(self):
        schedule = schedule_of('p', name_template='{server}/{schedule} '
                                                  '{time}')
        when = datetime.datetime(2026, 6, 1, 0, 30,
                                 tzinfo=datetime.timezone.utc)
        self.assertEqual('web/nightly 2026-06-01 02:30',
                         schedule.set_name(when))
