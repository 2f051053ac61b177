"""Regression test of the one patch: Horizon's Instances table carries
"Create Consistent Snapshot" right after its own "Create Snapshot"."""

from unittest import mock

from openstack_dashboard import api
from openstack_dashboard.dashboards.project.instances import tables
from openstack_dashboard.dashboards.project.instances import views

from snapshot_dashboard.content import instances_action
from tests.dashboard import helpers


class InstancesActionTests(helpers.TestCase):
    def setUp(self):
        super().setUp()
        # Horizon's own actions ask Nova for features (as its tests mock).
        patcher = mock.patch.object(api.nova, 'is_feature_available',
                                    return_value=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def row_actions(self, server):
        table = views.IndexView.table_class(self.request,
                                            data=self.servers.list())
        return [action.name for action in table.get_row_actions(server)]

    def test_the_action_follows_horizons_create_snapshot(self):
        server = self.servers.first()
        server.status = 'ACTIVE'
        names = self.row_actions(server)
        self.assertIn('consistent_snapshot', names)
        at = names.index('snapshot')
        self.assertEqual(['consistent_snapshot', 'schedule_backups'],
                         names[at + 1:at + 3])

    def test_both_places_horizon_reads_the_table_from_are_patched(self):
        self.assertIs(views.IndexView.table_class, tables.InstancesTable)
        self.assertTrue(tables.InstancesTable.snapshot_dashboard_patched)

    def test_not_offered_for_a_server_that_cannot_be_snapshotted(self):
        server = self.servers.first()
        server.status = 'ERROR'
        self.assertNotIn('consistent_snapshot', self.row_actions(server))

    def test_the_action_links_to_the_workflow_of_the_server(self):
        server = self.servers.first()
        server.status = 'ACTIVE'
        table = views.IndexView.table_class(self.request, data=[server])
        action = [a for a in table.get_row_actions(server)
                  if a.name == 'consistent_snapshot'][0]
        self.assertEqual('/project/snapshot_sets/create/%s/' % server.id,
                         action.get_link_url(server))

    def test_install_is_idempotent(self):
        before = views.IndexView.table_class
        self.assertIs(before, instances_action.install())
        self.assertEqual(1, [a.name for a in before._meta.row_actions]
                         .count('consistent_snapshot'))
