"""The REST API's handlers and policy, on the test database, with the
clouds in memory (tests/unit/fakes) and the trusts mocked. The same calls
with real Keystone tokens on the mini-cloud are in tests/integration."""

import datetime
import json
from unittest import mock

from django.test import TestCase
from django.utils import timezone
from oslo_config import cfg
import webob

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard import web
from snapshot_dashboard.restapi import conf as conf_module
from snapshot_dashboard.restapi import deploy
from snapshot_dashboard.restapi import handlers
from snapshot_dashboard.restapi import policies
from snapshot_dashboard.restapi.handlers import common
from tests.unit import fakes

USER = 'user-demo'


class Trust:
    def __init__(self, trust_id):
        self.id = trust_id


class FakeService(common.Service):
    """The API's service with every cloud call answered by ``cloud``."""

    def __init__(self, cloud, agent=None):
        conf = cfg.ConfigOpts()
        conf_module.register_opts(conf)
        conf([], default_config_files=[])
        super().__init__(conf, policies.enforcer(conf),
                         agent_locator=fakes.FakeAgents(agent)
                         if agent else None)
        self.cloud = cloud

    def clients(self, caller):
        return self.cloud


class APITestCase(TestCase):
    def setUp(self):
        super().setUp()
        self.cloud = fakes.FakeCloud()
        self.agent = fakes.FakeAgent(self.cloud)
        self.service = FakeService(self.cloud, self.agent)
        self.application = web.Router(handlers.ROUTES, self.service)
        trusts = iter('trust-%d' % n for n in range(1, 100))
        patcher = mock.patch.object(credentials, 'create_trust',
                                    side_effect=lambda *a, **k: Trust(
                                        next(trusts)))
        self.create_trust = patcher.start()
        self.addCleanup(patcher.stop)
        patcher = mock.patch.object(credentials, 'delete_trust',
                                    return_value=True)
        self.delete_trust = patcher.start()
        self.addCleanup(patcher.stop)

    def call(self, method, path, body=None, project=fakes.PROJECT,
             roles='reader,member', raw=None):
        request = webob.Request.blank(path, method=method)
        request.environ.update({
            'HTTP_X_IDENTITY_STATUS': 'Confirmed',
            'HTTP_X_USER_ID': USER, 'HTTP_X_USER_NAME': 'demo',
            'HTTP_X_PROJECT_ID': project, 'HTTP_X_ROLES': roles,
            'keystone.token_auth': object()})
        if raw is not None or body is not None:
            request.body = raw if raw is not None else json.dumps(
                body).encode()
            request.content_type = 'application/json'
        response = request.get_response(self.application)
        return response.status_int, (response.json if response.body
                                     else None), response

    def nothing_made(self):
        self.assertEqual(0, models.SnapshotRun.objects.count())
        self.assertEqual(0, models.Schedule.objects.count())
        self.create_trust.assert_not_called()


class RunTests(APITestCase):
    def setUp(self):
        super().setUp()
        self.server = self.cloud.add_server(ephemeral_gb=1,
                                            volumes=[('/dev/vdc', 2)])

    def create(self, roles='reader,member', **fields):
        return self.call('POST', '/v1/runs', {'run': dict(
            {'server_id': self.server}, **fields)}, roles=roles)

    def test_a_member_queues_a_run_with_a_trust(self):
        self.agent.copies = True
        status, body, response = self.create(
            devices=['vda', '/dev/vdc'], consistency='application',
            name='before upgrade', budget_s=20)
        self.assertEqual(202, status, body)
        run = models.SnapshotRun.objects.get()
        self.assertEqual(
            (run.server_id, run.devices, run.consistency, run.budget_s,
             run.name, run.trust_id, run.state, run.project_id,
             run.user_id),
            (self.server, ['/dev/vda', '/dev/vdc'], 'application', 20,
             'before upgrade', 'trust-1', models.QUEUED, fakes.PROJECT,
             USER))
        self.assertEqual(str(run.pk), body['run']['id'])
        self.assertTrue(response.location.endswith('/v1/runs/%s' % run.pk))
        caller = self.create_trust.call_args.args[0]
        self.assertEqual((caller.user_id, caller.project_id,
                          caller.role_names),
                         (USER, fakes.PROJECT, ('reader', 'member')))
        self.assertNotIn('trust_id', body['run'])

    def test_a_reader_cannot_take_a_set(self):
        status, body, _ = self.create(roles='reader')
        self.assertEqual(403, status)
        self.assertIn('run:create', body['message'])
        self.nothing_made()

    def test_another_projects_server_is_not_found(self):
        other = self.cloud.add_server(project_id=fakes.OTHER_PROJECT)
        status, body, _ = self.call('POST', '/v1/runs', {
            'run': {'server_id': other}})
        self.assertEqual(404, status)
        self.assertIn('No server %s in your project' % other,
                      body['message'])
        self.nothing_made()

    def test_a_server_that_cannot_be_snapshotted_is_a_conflict(self):
        self.cloud.servers[self.server]['status'] = 'ERROR'
        status, body, _ = self.create()
        self.assertEqual(409, status)
        self.assertIn('is ERROR', body['message'])
        self.nothing_made()

    def test_bad_choices_are_refused_with_the_reason(self):
        self.service.agent_locator = None  # no agent: no ephemeral copy
        for fields, reason in (
                ({'devices': ['vdz']}, 'Unknown device(s) /dev/vdz'),
                ({'devices': ['vdb']}, 'Cannot capture /dev/vdb'),
                ({'devices': []}, 'devices must be null'),
                ({'devices': 'vda'}, 'devices must be null'),
                ({'consistency': 'application'},
                 'no compute-side agent is configured'),
                ({'consistency': 'best'}, 'consistency must be one of'),
                ({'budget_s': 0}, 'budget_s must be'),
                ({'budget_s': 241}, 'budget_s must be'),
                ({'budget_s': '60'}, 'budget_s must be'),
                ({'name': 'x' * 256}, 'name is longer than 255'),
                ({'server_id': ''}, 'server_id must be a non-empty'),
                ({'server_id': '../os-hypervisors'},
                 "server_id must be a server's UUID"),
                ({'colour': 'red'}, 'Unknown field(s): colour')):
            status, body, _ = self.create(**fields)
            self.assertEqual((400, reason in body['message']),
                             (status, True), (fields, body))
        self.nothing_made()

    def test_bodies_that_are_not_a_run_are_refused(self):
        for raw, expected in ((b'{"run": ', 400), (b'[1]', 400),
                              (b'{"run": [1]}', 400), (b'{}', 400),
                              (b'{"run": {}, "x": 1}', 400),
                              (b'{"run": {}}', 400),
                              (b' ' * (64 * 1024 + 1), 413)):
            status, _, _ = self.call('POST', '/v1/runs', raw=raw)
            self.assertEqual(expected, status, raw[:20])
        self.nothing_made()

    def test_a_lying_content_length_or_deep_nesting_is_refused(self):
        request = webob.Request.blank('/v1/runs', method='POST')
        request.environ.update({
            'HTTP_X_IDENTITY_STATUS': 'Confirmed', 'HTTP_X_USER_ID': USER,
            'HTTP_X_PROJECT_ID': fakes.PROJECT,
            'HTTP_X_ROLES': 'reader,member', 'keystone.token_auth': object(),
            'CONTENT_LENGTH': '-1'})
        self.assertEqual(400, request.get_response(
            self.application).status_int)
        status, body, _ = self.call('POST', '/v1/runs',
                                    raw=b'[' * 20000 + b']' * 20000)
        self.assertEqual((400, 'The body is not JSON.'),
                         (status, body['message']))
        self.nothing_made()

    def test_not_enough_quota_is_refused_before_anything_is_made(self):
        self.cloud.limits.update(maxTotalSnapshots=1, totalSnapshotsUsed=1)
        status, body, _ = self.create()
        self.assertEqual(403, status)
        self.assertIn('Not enough quota: volume snapshots', body['message'])
        self.nothing_made()

    def test_the_trust_goes_if_the_run_cannot_be_saved(self):
        with mock.patch.object(models.SnapshotRun, 'queue',
                               side_effect=RuntimeError('database gone')):
            with self.assertRaises(RuntimeError):
                self.create()
        self.delete_trust.assert_called_once_with('trust-1')

    def test_a_run_is_shown_with_its_progress_but_no_secrets(self):
        _, body, _ = self.create()
        run = models.SnapshotRun.objects.get()
        run.events = [{'step': 'open-window', 'state': 'done',
                       'window': {'kind': 'AgentFreezeWindow',
                                  'lease': 'l1',
                                  'agent': 'http://agent'}}]
        run.drives = {'/dev/vda': 'capturing'}
        run.save()
        status, body, _ = self.call('GET', '/v1/runs/%s' % run.pk,
                                    roles='reader')
        self.assertEqual(200, status)
        self.assertEqual({'/dev/vda': 'capturing'}, body['run']['drives'])
        self.assertEqual([{'step': 'open-window', 'state': 'done'}],
                         body['run']['events'])
        text = json.dumps(body)
        for secret in ('trust-1', 'l1', 'http://agent'):
            self.assertNotIn(secret, text)

    def test_another_projects_runs_are_neither_listed_nor_shown(self):
        self.create()
        run = models.SnapshotRun.objects.get()
        status, body, _ = self.call('GET', '/v1/runs',
                                    project=fakes.OTHER_PROJECT)
        self.assertEqual((200, []), (status, body['runs']))
        status, _, _ = self.call('GET', '/v1/runs/%s' % run.pk,
                                 project=fakes.OTHER_PROJECT)
        self.assertEqual(404, status)
        status, body, _ = self.call('GET', '/v1/runs')
        self.assertEqual([str(run.pk)], [r['id'] for r in body['runs']])
        self.assertEqual(404, self.call('GET', '/v1/runs/not-a-uuid')[0])

    def test_runs_are_listed_by_state_and_limited(self):
        for _ in range(3):
            self.create()
        models.SnapshotRun.objects.filter(
            pk=models.SnapshotRun.objects.first().pk).update(
                state=models.FAILED)
        self.assertEqual(2, len(self.call(
            'GET', '/v1/runs?state=queued')[1]['runs']))
        self.assertEqual(1, len(self.call('GET', '/v1/runs?limit=1')[1][
            'runs']))
        for query in ('state=lost', 'limit=0', 'limit=x'):
            self.assertEqual(400, self.call('GET', '/v1/runs?' + query)[0])

    def test_no_confirmed_identity_or_no_project_is_refused(self):
        request = webob.Request.blank('/v1/runs')
        self.assertEqual(401, request.get_response(
            self.application).status_int)
        status, _, _ = self.call('GET', '/v1/runs', project='')
        self.assertEqual(403, status)


class SetTests(APITestCase):
    def take_set(self, project=fakes.PROJECT):
        self.cloud.project_id = project
        server = self.cloud.add_server(volumes=[('/dev/vdb', 1)])
        from snapshot_dashboard.orchestration import run
        snapshot_set = run.create_snapshot_set(
            self.cloud, server, consistency='crash', wait=True,
            clock=fakes.FakeClock(self.cloud))
        self.cloud.project_id = fakes.PROJECT
        return snapshot_set

    def test_list_show_and_delete_a_set(self):
        snapshot_set = self.take_set()
        status, body, _ = self.call('GET', '/v1/sets', roles='reader')
        self.assertEqual([snapshot_set.id], [s['id'] for s in body['sets']])
        status, body, _ = self.call('GET', '/v1/sets/%s' % snapshot_set.id)
        self.assertEqual(['/dev/vda', '/dev/vdb'],
                         [d['name'] for d in body['set']['drives']])
        status, _, _ = self.call('DELETE', '/v1/sets/%s' % snapshot_set.id,
                                 roles='reader')
        self.assertEqual(403, status)
        status, _, _ = self.call('DELETE', '/v1/sets/%s' % snapshot_set.id)
        self.assertEqual(204, status)
        self.assertEqual(({}, {}), (self.cloud.images, self.cloud.snapshots))

    def test_another_projects_set_is_not_found(self):
        snapshot_set = self.take_set(project=fakes.OTHER_PROJECT)
        for method in ('GET', 'DELETE'):
            status, _, _ = self.call(method, '/v1/sets/%s' % snapshot_set.id)
            self.assertEqual(404, status)
        self.assertIn(snapshot_set.id, self.cloud.images)


class RestoreTests(APITestCase):
    take_set = SetTests.take_set

    def restore(self, set_id, roles='reader,member', **fields):
        return self.call('POST', '/v1/sets/%s/restore' % set_id,
                         {'restore': dict({'as': 'new-volumes'}, **fields)},
                         roles=roles)

    def test_a_member_queues_the_restore_of_chosen_drives(self):
        snapshot_set = self.take_set()
        other = self.cloud.add_server(name='other')
        volumes = set(self.cloud.volumes)
        status, body, response = self.restore(
            snapshot_set.id, devices=['vdb'], attach_to=other)
        self.assertEqual(202, status, body)
        run = models.SnapshotRun.objects.get()
        self.assertEqual(
            (run.action, run.set_id, run.server_id, run.devices,
             run.attach_to, run.trust_id, run.state),
            (models.RESTORE_VOLUMES, snapshot_set.id, snapshot_set.server_id,
             ['/dev/vdb'], other, 'trust-1', models.QUEUED))
        self.assertEqual((body['run']['action'], body['run']['attach_to']),
                         ('restore-volumes', other))
        self.assertTrue(response.location.endswith('/v1/runs/%s' % run.pk))
        # Queued, not made: the worker makes the volumes.
        self.assertEqual(volumes, set(self.cloud.volumes))

    def test_bad_restores_are_refused_and_nothing_is_queued(self):
        snapshot_set = self.take_set()
        theirs = self.cloud.add_server(project_id=fakes.OTHER_PROJECT)
        busy = self.cloud.add_server(name='busy', status='BUILD')
        for fields, status, words in [
                ({'as': 'sideways'}, 400, 'as must be one of new-volumes, '
                 'in-place'),
                ({'as': 'in-place', 'attach_to': theirs}, 400,
                 'attach_to is for a restore as new volumes'),
                ({'as': 'in-place', 'budget_s': 0}, 400, 'budget'),
                ({'devices': ['vdz']}, 400, 'Unknown device'),
                ({'devices': 'vdb'}, 400, 'devices must be'),
                ({'attach_to': 'not-a-uuid'}, 400, 'attach_to must be'),
                ({'attach_to': theirs}, 404, 'No server'),
                ({'attach_to': busy}, 409, 'is BUILD'),
                ({'name': 'x'}, 400, 'Unknown field')]:
            got, body, _ = self.call(
                'POST', '/v1/sets/%s/restore' % snapshot_set.id,
                {'restore': dict({'as': 'new-volumes'}, **fields)})
            self.assertEqual(status, got, fields)
            self.assertIn(words, body['message'], fields)
        self.cloud.limits.update(maxTotalVolumes=2, totalVolumesUsed=2)
        got, body, _ = self.restore(snapshot_set.id)
        self.assertEqual(403, got)
        self.assertIn('Not enough quota', body['message'])
        self.nothing_made()

    def test_a_member_queues_a_restore_in_place(self):
        snapshot_set = self.take_set()
        status, body, _ = self.restore(snapshot_set.id, devices=['vdb'],
                                       budget_s=20, **{'as': 'in-place'})
        self.assertEqual(202, status, body)
        run = models.SnapshotRun.objects.get()
        self.assertEqual(
            (run.action, run.set_id, run.server_id, run.devices,
             run.budget_s, run.attach_to),
            (models.RESTORE_IN_PLACE, snapshot_set.id,
             snapshot_set.server_id, ['/dev/vdb'], 20, ''))
        self.assertEqual(body['run']['action'], 'restore-in-place')

    def test_a_restore_in_place_that_cannot_be_is_refused_unqueued(self):
        snapshot_set = self.take_set()
        self.cloud.detach(snapshot_set.server_id, '/dev/vdb')
        status, body, _ = self.restore(snapshot_set.id, devices=['vdb'],
                                       **{'as': 'in-place'})
        self.assertEqual(400, status)
        self.assertIn('/dev/vdb: the server has no drive there now',
                      body['message'])
        self.cloud.servers[snapshot_set.server_id][
            'OS-EXT-STS:task_state'] = 'rebuilding'
        status, body, _ = self.restore(snapshot_set.id, **{'as': 'in-place'})
        self.assertEqual(409, status)
        self.nothing_made()

    def _ended_restore(self, project=fakes.PROJECT, **fields):
        snapshot_set = self.take_set(project=project)
        values = {'action': models.RESTORE_IN_PLACE, 'project_id': project,
                  'user_id': 'u', 'server_id': snapshot_set.server_id,
                  'set_id': 'the-set', 'consistency': '', 'budget_s': 30,
                  'state': models.SUCCEEDED,
                  'undo_set_id': snapshot_set.id, **fields}
        return models.SnapshotRun.objects.create(**values)

    def test_undo_queues_the_restore_in_place_of_the_safety_set(self):
        restored = self._ended_restore()
        status, body, response = self.call(
            'POST', '/v1/runs/%s/undo' % restored.pk)
        self.assertEqual(202, status, body)
        undo = models.SnapshotRun.objects.get(pk=body['run']['id'])
        self.assertEqual(
            (undo.action, undo.set_id, undo.devices, undo.budget_s),
            (models.RESTORE_IN_PLACE, restored.undo_set_id, None, 30))
        self.assertTrue(response.location.endswith('/v1/runs/%s' % undo.pk))

    def test_only_a_restore_in_place_that_succeeded_can_be_undone(self):
        for fields in ({'state': models.FAILED},
                       {'action': models.RESTORE_VOLUMES},
                       {'undo_set_id': ''}):
            restored = self._ended_restore(**fields)
            status, body, _ = self.call('POST',
                                        '/v1/runs/%s/undo' % restored.pk)
            self.assertEqual(409, status, fields)
            self.assertIn('nothing to undo', body['message'])
        theirs = self._ended_restore(project=fakes.OTHER_PROJECT)
        status, _, _ = self.call('POST', '/v1/runs/%s/undo' % theirs.pk)
        self.assertEqual(404, status)
        mine = self._ended_restore()
        status, body, _ = self.call('POST', '/v1/runs/%s/undo' % mine.pk,
                                    roles='reader')
        self.assertEqual(403, status)
        self.assertIn('run:undo', body['message'])
        self.assertEqual(5, models.SnapshotRun.objects.count())
        self.create_trust.assert_not_called()

    def test_a_reader_or_another_project_cannot_restore(self):
        snapshot_set = self.take_set()
        status, body, _ = self.restore(snapshot_set.id, roles='reader')
        self.assertEqual(403, status)
        self.assertIn('set:restore', body['message'])
        theirs = self.take_set(project=fakes.OTHER_PROJECT)
        status, _, _ = self.restore(theirs.id)
        self.assertEqual(404, status)
        self.nothing_made()


class ScheduleTests(APITestCase):
    def setUp(self):
        super().setUp()
        self.server = self.cloud.add_server(volumes=[('/dev/vdb', 1)])

    def create(self, roles='reader,member', **fields):
        body = {'name': 'nightly', 'server_id': self.server,
                'timing': 'daily', 'hour': 2, 'minute': 30,
                'timezone': 'Europe/Paris', 'keep_last': 7}
        body.update(fields)
        return self.call('POST', '/v1/schedules', {'schedule': body},
                         roles=roles)

    def test_create_show_list_and_delete(self):
        status, body, response = self.create(devices=['vdb'],
                                             consistency='application')
        self.assertEqual(201, status, body)
        schedule = models.Schedule.objects.get()
        self.assertEqual(
            (schedule.cron, schedule.trust_id, schedule.devices,
             schedule.server_name),
            ('30 2 * * *', 'trust-1', ['/dev/vdb'], 'web'))
        self.assertGreater(schedule.next_run_at, timezone.now())
        self.assertEqual('Every day at 02:30 (Europe/Paris)',
                         body['schedule']['timing_description'])
        self.assertNotIn('trust_id', body['schedule'])
        self.assertEqual(200, self.call(
            'GET', '/v1/schedules/%s' % schedule.pk, roles='reader')[0])
        self.assertEqual([str(schedule.pk)], [s['id'] for s in self.call(
            'GET', '/v1/schedules', roles='reader')[1]['schedules']])
        status, _, _ = self.call('DELETE', '/v1/schedules/%s' % schedule.pk)
        self.assertEqual(204, status)
        self.assertEqual(0, models.Schedule.objects.count())
        self.delete_trust.assert_called_once_with('trust-1')

    def test_a_schedule_whose_trust_stays_is_kept_paused(self):
        self.create()
        schedule = models.Schedule.objects.get()
        self.delete_trust.return_value = False
        status, body, _ = self.call('DELETE',
                                    '/v1/schedules/%s' % schedule.pk)
        self.assertEqual(503, status)
        self.assertIn('could not be revoked', body['message'])
        schedule.refresh_from_db()
        self.assertEqual((False, None, 'trust-1'), (
            schedule.enabled, schedule.next_run_at, schedule.trust_id))

    def test_bad_schedules_are_refused_and_nothing_is_saved(self):
        self.service.agent_locator = None
        for fields, reason in (
                ({'timing': 'cron', 'cron': '61 * * * *'},
                 'Not a valid cron expression'),
                ({'timing': 'cron', 'cron': '*/5 * * * *'},
                 'the shortest interval allowed here is 1 h'),
                ({'timing': 'fortnightly'}, 'timing must be one of'),
                ({'hour': 24}, 'hour must be a whole number from 0 to 23'),
                ({'timezone': 'Mars/Olympus'}, 'Unknown timezone'),
                ({'keep_last': 0}, 'At least one retention rule'),
                ({'keep_last': -1}, 'keep_last must be'),
                ({'keep_last': 10 ** 20}, 'keep_last must be'),
                ({'hour': True}, 'hour must be a whole number'),
                ({'name_template': '{time:>999999999}'},
                 'Set names may use'),
                ({'name_template': '{host}'}, 'Set names may use'),
                ({'devices': ['vdz']}, 'Unknown device(s) /dev/vdz'),
                ({'consistency': 'application'},
                 'no compute-side agent is configured'),
                ({'name': ''}, 'name must be a non-empty string')):
            status, body, _ = self.create(**fields)
            self.assertEqual((400, reason in body['message']),
                             (status, True), (fields, body))
        self.nothing_made()

    def test_a_reader_sees_but_cannot_create_change_or_run(self):
        self.create()
        schedule = models.Schedule.objects.get()
        self.create_trust.reset_mock()
        status, _, _ = self.create(roles='reader')
        self.assertEqual(403, status)
        for method, suffix in (('PUT', ''), ('DELETE', ''),
                               ('POST', '/pause'), ('POST', '/run')):
            status, _, _ = self.call(
                method, '/v1/schedules/%s%s' % (schedule.pk, suffix),
                {'schedule': {'hour': 3}} if method == 'PUT' else None,
                roles='reader')
            self.assertEqual(403, status, (method, suffix))
        self.assertEqual(1, models.Schedule.objects.count())
        self.assertEqual(0, models.SnapshotRun.objects.count())

    def test_update_pause_resume_and_run_now(self):
        self.create()
        schedule = models.Schedule.objects.get()
        url = '/v1/schedules/%s' % schedule.pk
        status, body, _ = self.call('PUT', url, {'schedule': {
            'timing': 'weekly', 'weekday': 1, 'hour': 3}})
        self.assertEqual(200, status, body)
        schedule.refresh_from_db()
        self.assertEqual(('30 3 * * 1', 'trust-1', 'nightly'),
                         (schedule.cron, schedule.trust_id, schedule.name))
        status, body, _ = self.call('PUT', url, {'schedule': {
            'server_id': 'another-server'}})
        self.assertEqual(400, status)
        self.assertIn('stays on its server', body['message'])
        self.assertEqual(
            (False, None),
            (lambda b: (b['enabled'], b['next_run_at']))(self.call(
                'POST', url + '/pause')[1]['schedule']))
        self.assertTrue(self.call('POST', url + '/resume')[1]['schedule'][
            'enabled'])
        before = models.Schedule.objects.get().next_run_at
        status, body, _ = self.call('POST', url + '/run')
        self.assertEqual(202, status)
        run = models.SnapshotRun.objects.get()
        self.assertEqual((str(run.pk), run.schedule_id, run.trust_id),
                         (body['run']['id'], schedule.pk, 'trust-1'))
        self.assertEqual(before, models.Schedule.objects.get().next_run_at)

    def test_a_broken_schedule_cannot_be_resumed_or_run(self):
        self.create()
        schedule = models.Schedule.objects.get()
        models.Schedule.objects.filter(pk=schedule.pk).update(
            enabled=False, broken_reason='The server is gone (x).',
            next_run_at=None)
        for suffix in ('/resume', '/run'):
            status, body, _ = self.call(
                'POST', '/v1/schedules/%s%s' % (schedule.pk, suffix))
            self.assertEqual(409, status, suffix)
            self.assertIn('The server is gone', body['message'])
        self.assertEqual(0, models.SnapshotRun.objects.count())
        self.assertFalse(models.Schedule.objects.get().enabled)

    def test_a_change_keeps_what_a_worker_wrote_meanwhile(self):
        self.create()
        schedule = models.Schedule.objects.get()
        fired = timezone.now()
        # A worker fires it between the API's read and its save.
        with mock.patch.object(
                models.Schedule, 'next_fire',
                side_effect=lambda *a: models.Schedule.objects.filter(
                    pk=schedule.pk).update(last_fired_at=fired) and None):
            self.call('PUT', '/v1/schedules/%s' % schedule.pk,
                      {'schedule': {'hour': 4}})
        schedule.refresh_from_db()
        self.assertEqual((4, fired), (schedule.hour, schedule.last_fired_at))

    def test_another_projects_schedule_cannot_be_seen_or_touched(self):
        self.create()
        schedule = models.Schedule.objects.get()
        for method, suffix in (('GET', ''), ('PUT', ''), ('DELETE', ''),
                               ('POST', '/pause'), ('POST', '/run')):
            status, _, _ = self.call(
                method, '/v1/schedules/%s%s' % (schedule.pk, suffix),
                {'schedule': {'hour': 3}} if method == 'PUT' else None,
                project=fakes.OTHER_PROJECT)
            self.assertEqual(404, status, (method, suffix))
        schedule.refresh_from_db()
        self.assertEqual(('30 2 * * *', True), (schedule.cron,
                                                schedule.enabled))
        self.assertEqual([], self.call('GET', '/v1/schedules',
                                       project=fakes.OTHER_PROJECT)[1][
                                           'schedules'])


class DeployTests(TestCase):
    def test_the_version_document_needs_no_token(self):
        def authenticated(environ, start_response):
            raise AssertionError('/ went through authentication')
        router = web.Router(handlers.ROUTES, None)
        application = deploy.VersionsWithoutToken(authenticated, router)
        response = webob.Request.blank('/').get_response(application)
        self.assertEqual(200, response.status_int)
        self.assertEqual('v1.0', response.json['versions'][0]['id'])
        self.assertTrue(response.json['versions'][0]['links'][0][
            'href'].endswith('/v1/'))

    def test_every_other_path_needs_the_token(self):
        seen = []

        def authenticated(environ, start_response):
            seen.append(environ['PATH_INFO'])
            return web.json_response(401, {})(environ, start_response)
        application = deploy.VersionsWithoutToken(authenticated, None)
        response = webob.Request.blank('/v1/runs').get_response(application)
        self.assertEqual((401, ['/v1/runs']), (response.status_int, seen))

    def test_policy_sample_names_every_rule(self):
        names = {rule.name for rule in policies.list_rules()}
        for rule in (policies.RUN_CREATE, policies.RUN_GET,
                     policies.SET_DELETE, policies.SCHEDULE_RUN):
            self.assertIn(rule, names)


def test_runs_made_before_the_budget_existed_have_the_default(db):
    run = models.SnapshotRun.objects.create(
        project_id='p', user_id='u', server_id='s', consistency='auto',
        created_at=timezone.now() - datetime.timedelta(days=1))
    assert run.budget_s == models.DEFAULT_BUDGET_S


class ReapedTests(APITestCase):
    def setUp(self):
        super().setUp()
        models.ReapedResource.objects.create(
            kind='volume-snapshot', resource_id='s1', run_id='r1',
            project_id=fakes.OTHER_PROJECT, outcome='deleted')

    def test_an_admin_sees_what_the_reaper_deleted_in_every_project(self):
        status, body, _ = self.call('GET', '/v1/reaped',
                                    roles='reader,member,admin')
        self.assertEqual(200, status, body)
        self.assertEqual([('s1', 'r1', fakes.OTHER_PROJECT, 'deleted')],
                         [(r['id'], r['run_id'], r['project_id'],
                           r['outcome']) for r in body['reaped']])

    def test_a_member_sees_nothing_of_it(self):
        status, body, _ = self.call('GET', '/v1/reaped')
        self.assertEqual(403, status, body)
