"""Horizon's TestCase with this plugin's test data added through a mixin
(manila-ui's way), not copied."""

from openstack_dashboard.test import helpers
from openstack_dashboard.test.test_data import utils as test_data_utils

from snapshot_dashboard.orchestration import preflight
from snapshot_dashboard.orchestration import sets


def _drive(name, kind, size_gb, **fields):
    return sets.Drive(name=name, kind=kind, size_gb=size_gb,
                      captured_ms=120, shared_instant=True, **fields)


class SnapshotSetsDataMixin:
    def _setup_test_data(self):
        super()._setup_test_data()
        server = self.servers.first()
        self.snapshot_sets = test_data_utils.TestDataContainer()
        self.snapshot_sets.add(
            sets.SnapshotSet(
                id='set-image-backed', name='web before upgrade',
                server_id=server.id, run_id='run-1',
                consistency='application',
                requested_consistency='auto', window_ms=342,
                drives=[_drive('/dev/vda', 'root-image', 1,
                               image_id='set-image-backed',
                               captured_by='agent'),
                        _drive('/dev/vdb', 'ephemeral', 1,
                               image_id='image-eph', captured_by='agent'),
                        _drive('/dev/vdc', 'volume', 2, volume_id='vol-1',
                               volume_name='data', snapshot_id='snap-1',
                               captured_by='cinder')],
                bootable=True, created_at='2026-11-25T10:00:00Z',
                status=sets.AVAILABLE, project_id=self.tenant.id),
            sets.SnapshotSet(
                id='set-data-only', name='data only',
                server_id=server.id, run_id='run-2', consistency='crash',
                requested_consistency='crash', window_ms=12,
                drives=[_drive('/dev/vdc', 'volume', 2, volume_id='vol-1',
                               volume_name='data', snapshot_id='snap-2',
                               captured_by='cinder')],
                created_at='2026-11-25T09:00:00Z', status=sets.CREATING,
                project_id=self.tenant.id))
        self.preflights = test_data_utils.TestDataContainer()
        self.preflights.add(preflight.Preflight(
            server_id=server.id, server_name=server.name,
            drives=(
                preflight.DriveChoice('/dev/vda', 'root-image', 1),
                preflight.DriveChoice('/dev/vdb', 'ephemeral', 1),
                preflight.DriveChoice('/dev/vdc', 'volume', 2,
                                      volume_name='data')),
            agent=True, guest_agent=True,
            expected={'auto': 'application', 'application': 'application',
                      'crash': 'crash', 'none': 'none'},
            refused={},
            quotas=(preflight.QuotaCheck('volume snapshots', 1, 3, 10),
                    preflight.QuotaCheck('images', 2, 4, -1)),
            usage=preflight.Usage()))


class TestCase(SnapshotSetsDataMixin, helpers.TestCase):
    pass


class BaseAdminViewTests(SnapshotSetsDataMixin, helpers.BaseAdminViewTests):
    pass
