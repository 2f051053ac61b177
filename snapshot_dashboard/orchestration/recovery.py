"""Recovering a run whose process died: close its window, remove what it
made.

A run tags every volume snapshot and image it creates with its run id
(``snapshot_set_run``), and records the window it opened (``Window.record``).
That is all another process needs: nothing is left frozen, paused or
orphaned, even when the first process vanished mid-run.
"""

import logging

from cinderclient import exceptions as cinder_exceptions
from novaclient import exceptions as nova_exceptions

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)


def close_window(clients, server_id, record, clock=window_module.Clock):
    """Close a window a dead run left open, or began to open (its intent);
    returns whether nothing is held any more, and what was done.

    An agent's lease is released with the same call the run would have
    made; a lease whose id was never recorded ends by the agent's watchdog
    within its budget. A Nova pause is undone once Nova lets it (a running
    createImage first).
    """
    kind = (record or {}).get('kind')
    if kind in ('AgentFreezeWindow', 'AgentPauseWindow'):
        if not record.get('lease'):
            return True, ('no lease was recorded: if one was taken, the '
                          'agent ends it within %s s'
                          % record.get('budget_s', 'its budget'))
        agent = agent_module.AgentClient(clients.session, record['agent'])
        try:
            lease = getattr(agent, record['release'])(server_id,
                                                      record['lease'])
        except Exception as e:
            LOG.warning('Could not %s %s through the agent: %s',
                        record['release'], server_id, e)
            return False, 'could not %s: %s' % (record['release'], e)
        if lease.get('release_error'):
            return False, 'the agent could not %s: %s' % (
                record['release'], lease['release_error'])
        return True, '%s (lease ended by %s)' % (record['release'],
                                                 lease.get('released_by'))
    if kind == 'NovaPauseWindow':
        window = window_module.NovaPauseWindow(clients.nova, server_id,
                                               clock=clock)
        try:
            # A pause asked just before the process died may still be on
            # its way: judge once Nova has settled it.
            server = window._wait_for(
                lambda s: s.get('OS-EXT-STS:task_state') != 'pausing',
                'pausing')
        except nova_exceptions.NotFound:
            return True, 'server gone'
        except errors.SnapshotSetError as e:
            return False, str(e)
        if server['status'] != 'PAUSED':
            return True, 'not paused'
        window.pause_requested = True
        try:
            window.close()
        except errors.SnapshotSetError as e:
            return False, str(e)
        return True, 'unpaused'
    return True, 'nothing held'


def remove_leftovers(clients, run_id):
    """Delete every volume snapshot and image tagged with ``run_id``.
    Returns what was deleted and what could not be."""
    deleted, failures = [], []
    for snapshot in capture.tagged_volume_snapshots(clients.cinder, run_id):
        try:
            capture.delete_volume_snapshot(clients.cinder, snapshot.id,
                                           window_module.Clock)
            deleted.append('volume snapshot %s' % snapshot.id)
        except cinder_exceptions.ClientException as e:
            failures.append('volume snapshot %s: %s' % (snapshot.id, e))
    for image in capture.tagged_images(clients.glance, run_id):
        try:
            capture.delete_image(clients.glance, image['id'])
            deleted.append('image %s' % image['id'])
        except Exception as e:
            failures.append('image %s: %s' % (image['id'], e))
    return deleted, failures


def remove_copies(clients, server_id, agent_url, capture_ids):
    """Have the agent drop copies a dead run left (it would after
    ``capture_keep`` anyway); returns what was asked."""
    agent = agent_module.AgentClient(clients.session, agent_url)
    removed = []
    for capture_id in capture_ids:
        try:
            agent.delete_capture(server_id, capture_id)
            removed.append('copy %s' % capture_id)
        except Exception as e:
            LOG.warning('Could not remove copy %s of %s: %s', capture_id,
                        server_id, e)
    return removed
