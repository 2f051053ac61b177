"""Project > Compute > Snapshot Sets, the workflow, the launch and restore
forms, with the API layer mocked the way Horizon's own tests do."""

import dataclasses

from django.urls import reverse
from openstack_dashboard.test import helpers as horizon_helpers

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content.snapshot_sets import rows
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import preflight
from tests.dashboard import helpers

INDEX_URL = reverse('horizon:project:snapshot_sets:index')


def create_url(server_id):
    return reverse('horizon:project:snapshot_sets:create', args=[server_id])


class SnapshotSetsIndexTests(helpers.TestCase):
    def add_run(self, **fields):
        values = {'project_id': self.tenant.id, 'user_id': self.user.id,
                  'server_id': self.servers.first().id,
                  'server_name': 'server_1', 'consistency': 'auto'}
        values.update(fields)
        return models.SnapshotRun.objects.create(**values)

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_index_lists_sets_and_runs_in_progress(self):
        server = self.servers.first()
        self.mock_page_sets.return_value = (self.snapshot_sets.list(), None)
        self.mock_server_names.return_value = {server.id: server.name}
        running = self.add_run(state=models.RUNNING, step='capture',
                               drives={'/dev/vdb': 'captured',
                                       '/dev/vdc': 'capturing'})
        failed = self.add_run(
            state=models.FAILED, error='Not enough quota: images.')
        self.add_run(project_id='another-project', state=models.FAILED,
                     error='not ours')
        # A restore makes volumes, not a set: not a row of this table.
        self.add_run(action=models.RESTORE_VOLUMES, state=models.RUNNING,
                     set_id='set-image-backed', name='a restore')

        res = self.client.get(INDEX_URL)

        self.assertTemplateUsed(res, 'horizon/common/_data_table_view.html')
        rows = res.context['snapshot_sets_table'].data
        self.assertEqual(
            sorted(['run-%s' % running.id, 'run-%s' % failed.id,
                    'set-image-backed', 'set-data-only']),
            sorted(row.id for row in rows))
        self.assertContains(res, 'web before upgrade')
        self.assertContains(res, 'Application-consistent')
        self.assertContains(res, 'Capturing (/dev/vdb captured, '
                                 '/dev/vdc capturing)')
        self.assertContains(res, 'Failed: Not enough quota: images.')
        self.assertNotContains(res, 'not ours')
        self.assertNotContains(res, 'a restore')
        self.mock_page_sets.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), marker=None, all_projects=False)

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_the_panel_makes_the_same_calls_for_any_number_of_sets(self):
        self.mock_server_names.return_value = {}
        self.mock_page_sets.return_value = (self.snapshot_sets.list() * 25,
                                            None)
        res = self.client.get(INDEX_URL)
        self.assertEqual(50, len(res.context['snapshot_sets_table'].data))
        self.assertEqual(1, self.mock_page_sets.call_count)
        self.assertEqual(1, self.mock_server_names.call_count)

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_sets_are_paged_with_the_next_link_and_its_marker(self):
        self.mock_server_names.return_value = {}
        running = self.add_run(state=models.RUNNING, step='capture')
        # The Next link carries the API's marker, whatever the last row.
        self.mock_page_sets.return_value = (self.snapshot_sets.list(),
                                            'next-page-marker')
        res = self.client.get(INDEX_URL)
        self.assertTrue(res.context['snapshot_sets_table'].has_more_data())
        self.assertContains(res, '?marker=next-page-marker')
        self.assertIn('run-%s' % running.id,
                      [r.id for r in res.context['snapshot_sets_table'].data])

        self.mock_page_sets.return_value = (self.snapshot_sets.list()[:1],
                                            None)
        res = self.client.get(INDEX_URL + '?marker=next-page-marker')
        self.mock_page_sets.assert_called_with(
            horizon_helpers.IsHttpRequest(), marker='next-page-marker',
            all_projects=False)
        table = res.context['snapshot_sets_table']
        self.assertFalse(table.has_more_data())
        # Runs lead the first page only.
        self.assertEqual(['set-image-backed'], [r.id for r in table.data])

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_a_marker_that_names_no_set_shows_the_first_page(self):
        self.mock_server_names.return_value = {}
        self.mock_page_sets.side_effect = [
            errors.SetNotFound('gone'), (self.snapshot_sets.list(), None)]
        res = self.client.get(INDEX_URL + '?marker=gone')
        self.assertEqual(2, len(res.context['snapshot_sets_table'].data))
        self.mock_page_sets.assert_called_with(
            horizon_helpers.IsHttpRequest(), marker=None, all_projects=False)

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_row_actions_launch_only_bootable_available_sets(self):
        self.mock_page_sets.return_value = (self.snapshot_sets.list(), None)
        self.mock_server_names.return_value = {}
        res = self.client.get(INDEX_URL)
        self.getAndAssertTableRowAction(res, 'snapshot_sets', 'launch',
                                        'set-image-backed')
        table = res.context['snapshot_sets_table']
        data_only = [r for r in table.data if r.id == 'set-data-only'][0]
        self.assertNotIn('launch', [a.name for a in
                                    table.get_row_actions(data_only)])

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names',
                                         'delete_set']})
    def test_delete_sets_in_a_batch(self):
        self.mock_page_sets.return_value = (self.snapshot_sets.list(), None)
        self.mock_server_names.return_value = {}
        res = self.client.post(INDEX_URL, {
            'action': 'snapshot_sets__delete',
            'object_ids': ['set-image-backed', 'set-data-only']})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.assertEqual(
            {'set-image-backed', 'set-data-only'},
            {c.args[1] for c in self.mock_delete_set.call_args_list})

    @horizon_helpers.create_mocks({api: ['get_set']})
    def test_detail_shows_every_drive(self):
        snapshot_set = self.snapshot_sets.first()
        self.mock_get_set.return_value = snapshot_set
        res = self.client.get(reverse('horizon:project:snapshot_sets:detail',
                                      args=[snapshot_set.id]))
        self.assertEqual(['/dev/vda', '/dev/vdb', '/dev/vdc'],
                         [d.name for d in res.context['drives_table'].data])
        self.assertContains(res, 'snap-1')
        self.assertContains(res, 'image-eph')
        self.assertContains(res, '342 ms')

    def test_a_failed_run_says_why(self):
        run = self.add_run(state=models.FAILED,
                           error='Server web is busy (image_uploading).',
                           cleanup='deleted: volume snapshot snap-9')
        res = self.client.get(reverse('horizon:project:snapshot_sets:run',
                                      args=[run.id]))
        self.assertContains(res, 'Server web is busy (image_uploading).')
        self.assertContains(res, 'deleted: volume snapshot snap-9')

    def test_a_restore_in_place_that_succeeded_offers_its_undo(self):
        run = self.add_run(action=models.RESTORE_IN_PLACE,
                           state=models.SUCCEEDED, undo_set_id='safety-1')
        url = reverse('horizon:project:snapshot_sets:run', args=[run.id])
        self.assertContains(self.client.get(url), reverse(
            'horizon:project:snapshot_sets:restore', args=['safety-1']))
        models.SnapshotRun.objects.filter(pk=run.pk).update(
            state=models.FAILED)
        self.assertNotContains(self.client.get(url), 'Undo this restore')

    def test_another_projects_run_is_not_shown(self):
        run = self.add_run(project_id='another-project')
        res = self.client.get(reverse('horizon:project:snapshot_sets:run',
                                      args=[run.id]))
        self.assertRedirectsNoFollow(res, INDEX_URL)


class CreateWorkflowTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        self.server = self.servers.first()

    def post(self, devices, consistency='auto', name='before upgrade'):
        return self.client.post(create_url(self.server.id), {
            'instance_id': self.server.id, 'devices': devices,
            'name': name, 'consistency': consistency, 'description': ''})

    @horizon_helpers.create_mocks({api: ['preflight']})
    def test_one_ticked_checkbox_per_drive_and_the_preflight_box(self):
        self.mock_preflight.return_value = self.preflights.first()
        res = self.client.get(create_url(self.server.id))
        self.assertTemplateUsed(res, 'horizon/common/_workflow.html')
        workflow = res.context['workflow']
        drives = workflow.steps[0].action
        self.assertEqual(['/dev/vda', '/dev/vdb', '/dev/vdc'],
                         [value for value, _ in
                          drives.fields['devices'].choices])
        self.assertEqual(['/dev/vda', '/dev/vdb', '/dev/vdc'],
                         drives.fields['devices'].initial)
        self.assertContains(res, '/dev/vdc - volume - data - 2 GB')
        self.assertContains(res, 'Guest agent answering')
        self.assertContains(res, 'Volume snapshots: 1 needed, 3 in use')
        self.assertContains(res, 'type="checkbox"', count=3)

    @horizon_helpers.create_mocks({api: ['preflight']})
    def test_a_server_that_cannot_be_snapshotted_says_why(self):
        self.mock_preflight.side_effect = errors.ServerNotSnapshottable(
            'server_1', 'ERROR')
        res = self.client.get(create_url(self.server.id))
        self.assertRedirectsNoFollow(
            res, reverse('horizon:project:instances:index'))
        self.assertMessageCount(error=1)

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_submit_enqueues_a_run_of_the_ticked_drives_with_a_trust(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = []
        self.mock_create_trust.return_value = type('Trust', (),
                                                   {'id': 'trust-1'})
        res = self.post(['/dev/vda', '/dev/vdc'], consistency='application')
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, INDEX_URL)
        run = models.SnapshotRun.objects.get()
        self.assertEqual(
            (run.server_id, run.devices, run.consistency, run.name,
             run.trust_id, run.state, run.project_id),
            (self.server.id, ['/dev/vda', '/dev/vdc'], 'application',
             'before upgrade', 'trust-1', models.QUEUED, self.tenant.id))
        self.mock_check_selection.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), self.server.id,
            ['/dev/vda', '/dev/vdc'])

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_not_enough_quota_is_refused_and_nothing_queued(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.return_value = [
            preflight.QuotaCheck('volume snapshots', 1, 10, 10)]
        res = self.post(['/dev/vdc'])
        self.assertContains(res, 'Not enough quota for these drives')
        self.assertEqual(0, models.SnapshotRun.objects.count())
        self.mock_create_trust.assert_not_called()

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_an_unknown_drive_is_refused_and_nothing_queued(self):
        self.mock_preflight.return_value = self.preflights.first()
        res = self.post(['/dev/vdz'])
        self.assertFormErrors(res, 1)
        self.assertEqual(0, models.SnapshotRun.objects.count())
        self.mock_check_selection.assert_not_called()
        self.mock_create_trust.assert_not_called()

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_a_consistency_the_server_cannot_have_is_refused(self):
        refused = dataclasses.replace(self.preflights.first(), refused={
            'application': 'Application consistency is not possible for '
                           'server server_1: its guest agent does not '
                           'answer.'})
        self.mock_preflight.return_value = refused
        self.mock_check_selection.return_value = []
        res = self.post(['/dev/vda'], consistency='application')
        self.assertContains(res, 'its guest agent does not answer')
        self.assertEqual(0, models.SnapshotRun.objects.count())
        self.mock_create_trust.assert_not_called()

    @horizon_helpers.create_mocks({api: ['preflight', 'check_selection'],
                                   credentials: ['create_trust']})
    def test_another_projects_server_is_refused(self):
        self.mock_preflight.return_value = self.preflights.first()
        self.mock_check_selection.side_effect = errors.ServerNotFound(
            self.server.id)
        res = self.post(['/dev/vda'])
        self.assertContains(res, 'No server %s in your project.'
                            % self.server.id)
        self.assertEqual(0, models.SnapshotRun.objects.count())
        self.mock_create_trust.assert_not_called()


class LaunchTests(helpers.TestCase):
    @horizon_helpers.create_mocks({
        api: ['get_set'],
        horizon_helpers.api.nova: ['flavor_list'],
        horizon_helpers.api.neutron: ['network_list_for_tenant']})
    def test_the_launch_form_opens_as_a_modal_and_as_a_page(self):
        snapshot_set = self.snapshot_sets.first()
        self.mock_get_set.return_value = snapshot_set
        self.mock_flavor_list.return_value = self.flavors.list()
        self.mock_network_list_for_tenant.return_value = []
        url = reverse('horizon:project:snapshot_sets:launch',
                      args=[snapshot_set.id])
        modal = self.client.get(url, HTTP_X_REQUESTED_WITH='XMLHttpRequest')
        self.assertTemplateUsed(modal,
                                'snapshot_dashboard/snapshot_sets/'
                                '_launch.html')
        self.assertContains(modal, 'web before upgrade-copy')
        # The set holds a copy of the ephemeral disk Nova will not write.
        self.assertContains(modal, 'The ephemeral disk starts blank')
        self.assertContains(modal, 'copy of /dev/vdb is not written')
        self.mock_get_set.return_value = self.snapshot_sets.list()[1]
        self.assertNotContains(self.client.get(
            url, HTTP_X_REQUESTED_WITH='XMLHttpRequest'), 'starts blank')
        page = self.client.get(url)
        self.assertTemplateUsed(page, 'snapshot_dashboard/snapshot_sets/'
                                      'launch.html')

    @horizon_helpers.create_mocks({
        api: ['get_set', 'launch_from_set'],
        horizon_helpers.api.nova: ['flavor_list'],
        horizon_helpers.api.neutron: ['network_list_for_tenant']})
    def test_launch_boots_from_the_set(self):
        snapshot_set = self.snapshot_sets.first()
        flavor = self.flavors.first()
        self.mock_get_set.return_value = snapshot_set
        self.mock_flavor_list.return_value = self.flavors.list()
        self.mock_network_list_for_tenant.return_value = []
        url = reverse('horizon:project:snapshot_sets:launch',
                      args=[snapshot_set.id])
        res = self.client.post(url, {'set_id': snapshot_set.id,
                                     'name': 'restored', 'flavor': flavor.id})
        self.assertNoFormErrors(res)
        self.mock_launch_from_set.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), snapshot_set.id, 'restored',
            flavor.id, None)


class RestoreTests(helpers.TestCase):
    def plan(self):
        snapshot_set = self.snapshot_sets.first()
        vda, vdb, vdc = snapshot_set.drives
        return inplace.InPlacePlan(
            snapshot_set=snapshot_set, server_id=snapshot_set.server_id,
            server_name='web', was_running=True,
            volumes=((vdc, plan_module.Device(
                '/dev/vdc', plan_module.VOLUME, 2, volume_id='vol-9',
                volume_name='data now')),), root=vda, ephemerals=(vdb,))

    def url(self):
        return reverse('horizon:project:snapshot_sets:restore',
                       args=[self.snapshot_sets.first().id])

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_only_an_available_set_has_the_restore_action(self):
        self.mock_page_sets.return_value = (self.snapshot_sets.list(), None)
        self.mock_server_names.return_value = {}
        res = self.client.get(INDEX_URL)
        self.getAndAssertTableRowAction(res, 'snapshot_sets', 'restore',
                                        'set-image-backed')
        table = res.context['snapshot_sets_table']
        creating = [r for r in table.data if r.id == 'set-data-only'][0]
        self.assertNotIn('restore', [a.name for a in
                                     table.get_row_actions(creating)])

    @horizon_helpers.create_mocks({api: ['restore_preview']})
    def test_every_drive_ticked_beside_what_will_change(self):
        self.mock_restore_preview.return_value = (self.plan(), {
            '/dev/vdd': 'a volume-backed root cannot be restored in place'})
        res = self.client.get(self.url(),
                              HTTP_X_REQUESTED_WITH='XMLHttpRequest')
        self.assertTemplateUsed(res, 'snapshot_dashboard/snapshot_sets/'
                                     '_restore.html')
        form = res.context['form']
        self.assertEqual(['/dev/vda', '/dev/vdb', '/dev/vdc'],
                         form.fields['devices'].initial)
        for words in ('A safety set of /dev/vda, /dev/vdb, /dev/vdc is '
                      'taken first', 'The server is stopped, and started '
                      'again', '/dev/vdc: volume data now is replaced by a '
                      'new volume', '/dev/vda: rebuilt by Nova from the '
                      'set&#x27;s root image', '/dev/vdb: written back from '
                      'the set&#x27;s copy', '/dev/vdd: a volume-backed root '
                      'cannot be restored in place'):
            self.assertContains(res, words)

    @horizon_helpers.create_mocks({api: ['restore_preview',
                                         'check_restore_in_place',
                                         'restore_in_place']})
    def test_the_ticked_drives_are_queued_and_the_run_shown(self):
        self.mock_restore_preview.return_value = (self.plan(), {})
        run = models.SnapshotRun.objects.create(
            project_id=self.tenant.id, user_id=self.user.id,
            server_id='srv', consistency='', action=models.RESTORE_IN_PLACE)
        self.mock_restore_in_place.return_value = run
        res = self.client.post(self.url(), {
            'set_id': 'set-image-backed', 'devices': ['/dev/vdc']})
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, reverse(
            'horizon:project:snapshot_sets:run', args=[run.pk]))
        self.mock_restore_in_place.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), 'set-image-backed',
            ['/dev/vdc'])

    @horizon_helpers.create_mocks({api: ['restore_preview',
                                         'check_restore_in_place',
                                         'restore_in_place']})
    def test_a_restore_that_cannot_be_is_a_form_error_queued_nothing(self):
        self.mock_restore_preview.return_value = (self.plan(), {})
        self.mock_check_restore_in_place.side_effect = \
            errors.CannotRestoreInPlace({'/dev/vdc': 'the server has no '
                                         'drive there now'})
        res = self.client.post(self.url(), {
            'set_id': 'set-image-backed', 'devices': ['/dev/vdc']})
        self.assertContains(res, '/dev/vdc: the server has no drive there '
                                 'now')
        self.mock_restore_in_place.assert_not_called()


class AdminSnapshotSetsTests(helpers.BaseAdminViewTests):
    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names']})
    def test_admin_lists_every_projects_sets(self):
        self.mock_page_sets.return_value = (self.snapshot_sets.list(), None)
        self.mock_server_names.return_value = {}
        res = self.client.get(reverse('horizon:admin:snapshot_sets:index'))
        self.assertEqual(2, len(res.context['admin_snapshot_sets_table']
                                .data))
        self.mock_page_sets.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), marker=None, all_projects=True)
        self.assertContains(res, self.tenant.id)

    @horizon_helpers.create_mocks({api: ['page_sets', 'server_names',
                                         'delete_set']})
    def test_admin_deletes_any_projects_set(self):
        self.mock_page_sets.return_value = (self.snapshot_sets.list(), None)
        self.mock_server_names.return_value = {}
        url = reverse('horizon:admin:snapshot_sets:index')
        res = self.client.post(url, {
            'action': 'admin_snapshot_sets__delete__set-data-only'})
        self.assertRedirectsNoFollow(res, url)
        self.mock_delete_set.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), 'set-data-only',
            any_project=True)


class RowsTests(helpers.TestCase):
    def test_a_run_whose_set_is_listed_shows_once_as_the_set(self):
        run = models.SnapshotRun.objects.create(
            project_id=self.tenant.id, user_id=self.user.id,
            server_id='server-1', consistency='auto',
            state=models.RUNNING, step='upload')
        other = models.SnapshotRun.objects.create(
            project_id=self.tenant.id, user_id=self.user.id,
            server_id='server-1', consistency='auto', state=models.QUEUED)
        listed = self.snapshot_sets.first()
        listed.run_id = str(run.id)
        shown = rows.rows([listed], [run, other], {'server-1': 'web'})
        self.assertEqual(['run-%s' % other.id, listed.id],
                         [row.id for row in shown])
        self.assertEqual('web (being taken)', str(shown[0].name))


class LiveRowTests(helpers.TestCase):
    def row_update(self, obj_id):
        return self.client.get(INDEX_URL, {
            'action': 'row_update', 'table': 'snapshot_sets',
            'obj_id': obj_id}, HTTP_X_REQUESTED_WITH='XMLHttpRequest')

    @horizon_helpers.create_mocks({api: ['get_set', 'server_name']})
    def test_a_run_row_updates_in_place_until_its_set_is_there(self):
        self.mock_server_name.return_value = 'server_1'
        run = models.SnapshotRun.objects.create(
            project_id=self.tenant.id, user_id=self.user.id,
            server_id='server-1', server_name='web', consistency='auto',
            state=models.RUNNING, step='capture',
            drives={'/dev/vda': 'captured', '/dev/vdc': 'capturing'})
        res = self.row_update('run-%s' % run.id)
        self.assertContains(res, '/dev/vdc capturing')
        self.assertContains(res, 'class="ajax-update warning"')  # polled

        snapshot_set = self.snapshot_sets.first()
        run.state, run.set_id = models.SUCCEEDED, snapshot_set.id
        run.save()
        self.mock_get_set.return_value = snapshot_set
        res = self.row_update('run-%s' % run.id)
        self.assertContains(res, 'data-object-id="%s"' % snapshot_set.id)
        self.assertContains(res, 'Available')
        self.assertContains(res, 'class="ajax-update status_up"')  # final
        self.assertContains(res, 'server_1')  # the instance's name
        self.mock_get_set.assert_called_once_with(
            horizon_helpers.IsHttpRequest(), snapshot_set.id)
