"""Consistent snapshot sets of a server: the logic shared by the Horizon
panels, the worker and the CLI. No Django here; usable from a plain shell::

    from keystoneauth1 import loading, session
    from snapshot_dashboard import orchestration

    clients = orchestration.Clients(session.Session(auth=...))
    snapshot_set = orchestration.create_snapshot_set(
        clients, server_id, devices=['vda', 'vdb'], consistency='crash',
        wait=True)
"""

from snapshot_dashboard.orchestration.clients import Clients
from snapshot_dashboard.orchestration.errors import SnapshotSetError
from snapshot_dashboard.orchestration.events import Event
from snapshot_dashboard.orchestration.preflight import Preflight
from snapshot_dashboard.orchestration.run import create_snapshot_set
from snapshot_dashboard.orchestration.run import plan_snapshot_set
from snapshot_dashboard.orchestration.sets import SnapshotSet
from snapshot_dashboard.orchestration.sets import delete_set
from snapshot_dashboard.orchestration.sets import get_set
from snapshot_dashboard.orchestration.sets import list_sets
from snapshot_dashboard.orchestration.window import LEVEL_HELP
from snapshot_dashboard.orchestration.window import LEVELS

__all__ = [
    'Clients', 'Event', 'LEVELS', 'LEVEL_HELP', 'Preflight', 'SnapshotSet',
    'SnapshotSetError', 'create_snapshot_set', 'delete_set', 'get_set',
    'list_sets', 'plan_snapshot_set',
]
