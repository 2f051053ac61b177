"""The consistency checker of tools/faults on the mini-cloud: it passes a
set taken inside the guest agent's freeze and fails one taken drive by
drive, the way users snapshot volumes by hand."""

import importlib.util
import os
import re
import time

import pytest

from snapshot_dashboard.orchestration import agent
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'consistency', os.path.join(ROOT, 'tools', 'faults', 'consistency.py'))
consistency = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(consistency)

AGENT_URL = 'http://127.0.0.1:9797'
# Other tests hold the same guests: a freeze refused as already held is
# tried again for this long.
HELD_RETRY_S = 180
GAP_S = 0.5


def take_held_set(demo, server_id):
    deadline = time.monotonic() + HELD_RETRY_S
    while True:
        try:
            return run.create_snapshot_set(
                demo, server_id, name='consistency-test',
                consistency='application', wait=True,
                agent_locator=agent.AgentLocator(AGENT_URL))
        except errors.ConsistencyUnavailable as e:
            if (getattr(e.__cause__, 'status', None) != 409
                    or time.monotonic() > deadline):
                raise
            time.sleep(3)


@pytest.fixture
def made(demo):
    """Sets and volume snapshots to delete after the test."""
    made = {'sets': [], 'snapshots': []}
    yield made
    for set_id in made['sets']:
        sets.delete_set(demo, set_id)
    for snapshot_id in made['snapshots']:
        wait_for('snapshot %s to settle' % snapshot_id, lambda s=snapshot_id:
                 demo.cinder.volume_snapshots.get(s).status != 'creating')
        demo.cinder.volume_snapshots.delete(snapshot_id)


@pytest.mark.parametrize('server_name', ['demo-volume', 'demo-image'])
def test_a_set_taken_in_the_freeze_is_a_consistent_cut(demo, made,
                                                       server_name):
    server = server_by_name(demo, server_name)
    snapshot_set = take_held_set(demo, server.id)
    made['sets'].append(snapshot_set.id)
    assert snapshot_set.consistency == 'application'

    verdict, readings = consistency.check_set(demo, snapshot_set.id)

    assert verdict.consistent, verdict.reason
    # Every drive was read, and every one holds the guest's counter.
    assert [r.device for r in readings] == sorted(
        d.name for d in snapshot_set.drives)
    assert verdict.unchecked == ()
    assert len(verdict.order) >= 2


def snapshots_one_by_one(demo, volumes, made):
    """Each volume snapshotted as a user would by hand: forced, the next
    one 0.5 s after the one before it was taken, no hold on the guest."""
    sources = []
    for device, volume_id in volumes:
        snapshot = demo.cinder.volume_snapshots.create(
            volume_id, force=True, name='consistency-test %s' % device)
        made['snapshots'].append(snapshot.id)
        wait_for('snapshot of %s' % device, lambda s=snapshot.id: (
            demo.cinder.volume_snapshots.get(s).status == 'available'),
            timeout_s=120, interval_s=0.1)
        sources.append(consistency.DriveSource(device,
                                               snapshot_id=snapshot.id))
        time.sleep(GAP_S)
    return sources


@pytest.mark.parametrize('order, pattern', [
    ('guest', r'torn: vdb holds round \d+, yet vda lacks round'),
    ('reverse', r'torn: vda holds round \d+, yet vdb lacks round'),
])
def test_volumes_snapshotted_one_by_one_are_torn(demo, made, order,
                                                 pattern):
    server = server_by_name(demo, 'demo-volume')
    volumes = sorted((a.device, a.volumeId) for a in
                     demo.nova.volumes.get_server_volumes(server.id))
    assert [device for device, _ in volumes] == ['/dev/vda', '/dev/vdb']
    if order == 'reverse':
        volumes.reverse()
    # A guest another test holds writes nothing between the snapshots: the
    # cut would be consistent by chance. Three tries make that unlikely.
    for _ in range(3):
        sources = snapshots_one_by_one(demo, volumes, made)
        verdict = consistency.check_readings(
            consistency.read_drives(demo, sources))
        if not verdict.consistent:
            break
    assert not verdict.consistent, verdict.reason
    assert verdict.unchecked == ()
    assert re.match(pattern, verdict.reason), verdict.reason
