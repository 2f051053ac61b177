"""The OpenStackClient commands through the REST API: the CLI's own client
talks to the API's real handlers (in this process, on the test database,
with the clouds in memory). With real services and a real worker on the
mini-cloud: tests/integration/test_restapi.py."""

import json as json_module
import sys
import types
from unittest import mock

from keystoneauth1 import exceptions as ks_exceptions
from osc_lib import exceptions
import webob

from snapshot_dashboard import models
from snapshot_dashboard.cli import plugin
from snapshot_dashboard.cli import schedules
from snapshot_dashboard.cli import service_client
from snapshot_dashboard.cli import snapshot_sets
from snapshot_dashboard.orchestration import run as run_module
from tests.restapi import test_restapi
from tests.unit import fakes


class Response:
    def __init__(self, response):
        self.status_code = response.status_int
        self.content = response.body

    def json(self):
        return json_module.loads(self.content)


class SessionToTheAPI:
    """A keystoneauth session whose catalog's snapshot-sets endpoint is the
    API's router, as the demo user."""

    def __init__(self, application, in_catalog=True):
        self.application = application
        self.in_catalog = in_catalog
        self.before_get = []

    def request(self, url, method, json=None, params=None, raise_exc=True,
                endpoint_filter=None):
        assert endpoint_filter['service_type'] == 'snapshot-sets'
        if not self.in_catalog:
            raise ks_exceptions.EndpointNotFound()
        if method == 'GET':
            for hook in self.before_get:
                hook()
        request = webob.Request.blank(url, method=method, POST=None)
        if params:
            request.query_string = '&'.join('%s=%s' % i
                                            for i in params.items())
        request.environ.update({
            'HTTP_X_IDENTITY_STATUS': 'Confirmed',
            'HTTP_X_USER_ID': test_restapi.USER, 'HTTP_X_USER_NAME': 'demo',
            'HTTP_X_PROJECT_ID': fakes.PROJECT,
            'HTTP_X_ROLES': 'reader,member', 'keystone.token_auth': object()})
        if json is not None:
            request.body = json_module.dumps(json).encode()
            request.content_type = 'application/json'
        return Response(request.get_response(self.application))


class CLIThroughAPITests(test_restapi.APITestCase):
    def setUp(self):
        super().setUp()
        self.session = SessionToTheAPI(self.application)
        self.server = self.cloud.add_server(volumes=[('/dev/vdb', 1)])
        patcher = mock.patch.object(snapshot_sets._Following, 'clock',
                                    fakes.FakeClock(self.cloud))
        patcher.start()
        self.addCleanup(patcher.stop)

    def invoke(self, command_class, *argv):
        app = types.SimpleNamespace(
            client_manager=types.SimpleNamespace(
                snapshot_sets=plugin.ClientSet(
                    self.cloud, service_client.ServiceClient(self.session))),
            stdout=sys.stdout, stderr=sys.stderr, options=None)
        command = command_class(app, None)
        parsed = command.get_parser('openstack').parse_args(list(argv))
        return command.take_action(parsed)

    def worker_takes_queued_runs(self, fail_with=None):
        """What the worker does, in this process: the queued runs are
        taken with the in-memory cloud and recorded as they end."""
        def take():
            for run in models.SnapshotRun.objects.filter(
                    state=models.QUEUED):
                if fail_with:
                    run.state, run.error = models.FAILED, fail_with
                else:
                    snapshot_set = run_module.create_snapshot_set(
                        self.cloud, run.server_id, devices=run.devices,
                        consistency=run.consistency, wait=True,
                        clock=fakes.FakeClock(self.cloud),
                        run_id=str(run.pk))
                    run.state, run.set_id = models.SUCCEEDED, snapshot_set.id
                    run.events = [{'step': 'close-window', 'state': 'done',
                                   'detail': '%d ms' % snapshot_set.window_ms}]
                run.save()
        self.session.before_get.append(take)

    def test_create_queues_a_run_and_shows_it(self):
        names, values = self.invoke(snapshot_sets.CreateSnapshotSet,
                                    self.server, '--device', 'vdb',
                                    '--consistency', 'crash')
        shown = dict(zip(names, values, strict=True))
        run = models.SnapshotRun.objects.get()
        self.assertEqual((shown['id'], shown['state'], shown['devices']),
                         (str(run.pk), 'queued', '/dev/vdb'))
        self.assertEqual(self.cloud.images, {})  # the worker takes it

    def test_create_wait_follows_the_run_and_shows_the_set(self):
        self.worker_takes_queued_runs()
        names, values = self.invoke(snapshot_sets.CreateSnapshotSet,
                                    self.server, '--consistency', 'crash',
                                    '--wait')
        shown = dict(zip(names, values, strict=True))
        run = models.SnapshotRun.objects.get()
        self.assertEqual((shown['id'], shown['consistency'],
                          shown['status']),
                         (run.set_id, 'crash', 'available'))
        self.assertIn(shown['id'], self.cloud.images)

    def test_restore_as_new_volumes_queues_then_shows_the_volumes(self):
        from snapshot_dashboard.orchestration import restore
        snapshot_set = run_module.create_snapshot_set(
            self.cloud, self.server, consistency='crash', wait=True,
            clock=fakes.FakeClock(self.cloud))
        other = self.cloud.add_server(name='other')
        with self.assertRaises(exceptions.CommandError) as raised:
            self.invoke(snapshot_sets.RestoreSnapshotSet, snapshot_set.id,
                        '--attach-to', other)
        self.assertIn('--attach-to goes with --as-new-volumes',
                      str(raised.exception))
        self.assertFalse(models.SnapshotRun.objects.exists())

        def take():
            for run in models.SnapshotRun.objects.filter(
                    state=models.QUEUED):
                restored = restore.restore_as_volumes(
                    self.cloud, run.set_id, devices=run.devices,
                    attach_to=run.attach_to, run_id=str(run.pk),
                    clock=fakes.FakeClock(self.cloud))
                run.state = models.SUCCEEDED
                run.resources = [{'kind': 'volume', 'id': v.volume_id}
                                 for v in restored]
                run.save()
        self.session.before_get.append(take)
        names, values = self.invoke(
            snapshot_sets.RestoreSnapshotSet, snapshot_set.id,
            '--as-new-volumes', '--device', 'vdb', '--attach-to', other,
            '--wait')
        shown = dict(zip(names, values, strict=True))
        (line,) = shown['volumes'].splitlines()
        self.assertTrue(line.startswith('/dev/vdb '), line)
        self.assertIn('attached to %s as /dev/vdb' % other, line)
        run = models.SnapshotRun.objects.get()
        self.assertEqual((shown['id'], shown['set_id'], run.attach_to),
                         (str(run.pk), snapshot_set.id, other))

    def test_a_failed_run_is_a_command_error_with_its_reason(self):
        self.worker_takes_queued_runs(fail_with='Not enough quota: images.')
        with self.assertRaises(exceptions.CommandError) as raised:
            self.invoke(snapshot_sets.CreateSnapshotSet, self.server,
                        '--wait')
        self.assertIn('failed: Not enough quota: images.',
                      str(raised.exception))

    def test_refusals_are_command_errors_and_queue_nothing(self):
        for argv, message in (
                (['--device', 'vdz'], 'Unknown device(s) /dev/vdz'),
                (['--agent-url', 'http://a:9797'], '--agent-url is for '
                 '--in-process')):
            with self.assertRaises(exceptions.CommandError) as raised:
                self.invoke(snapshot_sets.CreateSnapshotSet, self.server,
                            *argv)
            self.assertIn(message, str(raised.exception))
        self.nothing_made()

    def test_without_the_service_in_the_catalog_it_says_what_to_do(self):
        self.session.in_catalog = False
        with self.assertRaises(exceptions.CommandError) as raised:
            self.invoke(snapshot_sets.ListSnapshotSet)
        self.assertIn('no snapshot-sets service', str(raised.exception))
        self.assertIn('--in-process', str(raised.exception))

    def test_list_show_and_delete_through_the_api(self):
        snapshot_set = run_module.create_snapshot_set(
            self.cloud, self.server, consistency='crash', wait=True,
            clock=fakes.FakeClock(self.cloud))
        columns, rows = self.invoke(snapshot_sets.ListSnapshotSet,
                                    '--server', self.server)
        self.assertEqual([snapshot_set.id], [r[0] for r in rows])
        names, values = self.invoke(snapshot_sets.ShowSnapshotSet,
                                    snapshot_set.id)
        self.assertIn('/dev/vdb volume 1 GB', dict(zip(
            names, values, strict=True))['drives'])
        self.invoke(snapshot_sets.DeleteSnapshotSet, snapshot_set.id)
        self.assertEqual(({}, {}), (self.cloud.images, self.cloud.snapshots))

    def test_schedule_create_list_show_set_and_delete(self):
        names, values = self.invoke(
            schedules.CreateSchedule, self.server, '--name', 'nightly',
            '--timing', 'daily', '--hour', '2', '--minute', '30',
            '--timezone', 'Europe/Paris', '--keep-last', '7')
        shown = dict(zip(names, values, strict=True))
        self.assertEqual('Every day at 02:30 (Europe/Paris)',
                         shown['timing_description'])
        _, rows = self.invoke(schedules.ListSchedule)
        self.assertEqual([shown['id']], [r[0] for r in rows])
        self.invoke(schedules.SetSchedule, shown['id'], '--hour', '3',
                    '--pause')
        schedule = models.Schedule.objects.get()
        self.assertEqual(('30 3 * * *', False), (schedule.cron,
                                                 schedule.enabled))
        names, values = self.invoke(schedules.ShowSchedule, shown['id'])
        self.assertFalse(dict(zip(names, values, strict=True))['enabled'])
        with self.assertRaises(exceptions.CommandError) as raised:
            self.invoke(schedules.SetSchedule, shown['id'], '--hour', '25')
        self.assertIn('hour must be', str(raised.exception))
        self.invoke(schedules.DeleteSchedule, shown['id'])
        self.assertEqual(0, models.Schedule.objects.count())

    def test_a_cron_expression_alone_is_a_cron_timing(self):
        names, values = self.invoke(
            schedules.CreateSchedule, self.server, '--name', 'two-hourly',
            '--cron', '0 */2 * * *', '--keep-last', '3')
        self.assertEqual(('cron', '0 */2 * * *'), (
            models.Schedule.objects.get().timing,
            dict(zip(names, values, strict=True))['cron']))
