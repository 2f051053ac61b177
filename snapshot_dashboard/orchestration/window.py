"""The capture window: what holds the guest still while its drives are taken.

A window is opened before the first capture is initiated and closed as soon
as every drive has reached its point in time. ``level`` is the consistency
the window gives when it closes normally.
"""

import logging
import time

from keystoneauth1 import exceptions as ks_exceptions
from novaclient import exceptions as nova_exceptions

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import errors

LOG = logging.getLogger(__name__)

APPLICATION = 'application'
CRASH = 'crash'
NONE = 'none'
AUTO = 'auto'
LEVELS = (AUTO, APPLICATION, CRASH, NONE)
LEVEL_HELP = {
    AUTO: 'the best this server allows: application, else crash',
    APPLICATION: 'filesystems frozen by the guest agent during the capture, '
                 'or fail',
    CRASH: 'the server paused during the capture: every drive at one '
           'instant, as after a power cut',
    NONE: 'no pause: each drive captured at its own instant',
}


class Clock:
    """Time as the orchestration sees it; tests substitute their own."""

    now = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


class Window:
    level = NONE
    description = 'nothing held'
    held = True  # False once something else ended the hold early
    held_ms = None  # then: how long it held, from before it was asked
    open_ms = 0  # how long opening took (drives count from its end)
    # Whether close() releases only this window's own hold (an agent's
    # lease, by its id). A Nova pause has no owner: a process that lost its
    # run leaves it to the recovery, which may already have undone it.
    keyed = True

    def open(self):
        pass

    def close(self):
        pass

    def record(self):
        """What a process that finds this window open needs to close it."""
        return {'kind': type(self).__name__}


class NoWindow(Window):
    """Consistency ``none``: each drive at its own instant."""


class StillServerWindow(Window):
    """A server that is shut off, paused or suspended does not write: every
    drive already shares one instant."""

    level = CRASH
    description = 'server not running'


class NovaPauseWindow(Window):
    """Consistency ``crash`` through Nova's pause.

    Nova refuses to unpause while a task (such as its own createImage) runs
    on the server, so closing waits for the task to end first.
    """

    level = CRASH
    description = 'paused through Nova'
    keyed = False

    def __init__(self, nova, server_id, clock=Clock, poll_s=0.2,
                 timeout_s=600):
        self.nova = nova
        self.server_id = server_id
        self.clock = clock
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.pause_requested = False

    def _server(self):
        return self.nova.servers.get(self.server_id).to_dict()

    def _wait_for(self, condition, what):
        deadline = self.clock.now() + self.timeout_s
        while True:
            server = self._server()
            if condition(server):
                return server
            if server['status'] == 'ERROR':
                raise errors.CaptureFailed(
                    'Server %s went into ERROR while %s.'
                    % (self.server_id, what))
            if self.clock.now() >= deadline:
                raise errors.WindowCloseFailed(
                    'Server %s did not finish %s within %s s.'
                    % (self.server_id, what, self.timeout_s))
            self.clock.sleep(self.poll_s)

    def open(self):
        try:
            self.nova.servers.pause(self.server_id)
        except nova_exceptions.Conflict as e:
            # Nova refused: the server is paused, or busy, by someone else.
            # Nothing of ours to undo, so close() must not unpause it.
            raise errors.ConsistencyUnavailable(
                'Server %s cannot be paused now: %s' % (self.server_id, e)
            ) from e
        except Exception:
            self.pause_requested = True  # it may have landed
            raise
        self.pause_requested = True
        self._wait_for(lambda s: s['status'] == 'PAUSED', 'pausing')

    def close(self):
        if not self.pause_requested:
            return
        try:
            self._wait_for(
                lambda s: (s['status'] != 'PAUSED'
                           or not s.get('OS-EXT-STS:task_state')),
                'its running task')
            if self._server()['status'] == 'PAUSED':
                self.nova.servers.unpause(self.server_id)
            self._wait_for(lambda s: s['status'] != 'PAUSED', 'unpausing')
        except (nova_exceptions.ClientException, errors.SnapshotSetError) as e:
            raise errors.WindowCloseFailed(
                'Could not unpause server %s, it may still be paused: %s'
                % (self.server_id, e)) from e
        self.pause_requested = False


class AgentWindow(Window):
    """A freeze or pause held by the compute-side agent under a lease.

    The agent's watchdog ends the hold if this process vanishes. If it
    ended the hold before ``close`` (the budget ran out first), the drives
    were not all taken inside it: ``held`` turns False.
    """

    take = release = None  # the agent's calls, per kind

    def __init__(self, agent_client, server_id, budget_s):
        self.agent = agent_client
        self.server_id = server_id
        self.budget_s = budget_s + agent_module.WATCHDOG_MARGIN_S
        self.lease = None
        self.held = True

    def record(self):
        return {'kind': type(self).__name__, 'agent': self.agent.url,
                'lease': (self.lease or {}).get('id'),
                'release': self.release, 'budget_s': self.budget_s}

    def open(self):
        try:
            self.lease = getattr(self.agent, self.take)(self.server_id,
                                                        self.budget_s)
        except agent_module.AgentError as e:
            raise errors.ConsistencyUnavailable(
                'The compute-side agent could not %s server %s: %s'
                % (self.take, self.server_id, e)) from e

    def close(self):
        if self.lease is None:
            return
        try:
            lease = getattr(self.agent, self.release)(self.server_id,
                                                      self.lease['id'])
        except (agent_module.AgentError, ks_exceptions.ClientException) as e:
            raise errors.WindowCloseFailed(
                'The compute-side agent could not %s server %s (its '
                'watchdog will within %s s): %s' % (
                    self.release, self.server_id, self.budget_s, e)) from e
        self.lease = None
        if lease.get('released_by') != 'caller':
            self.held = False
            self.held_ms = lease.get('held_ms')
            LOG.warning('The %s of %s ended before the capture did (%s)',
                        self.take, self.server_id, lease.get('released_by'))
        if lease.get('release_error'):
            raise errors.WindowCloseFailed(
                'The compute-side agent could not %s server %s: %s'
                % (self.release, self.server_id, lease['release_error']))


class AgentFreezeWindow(AgentWindow):
    level = APPLICATION
    description = 'filesystems frozen by the guest agent'
    take, release = 'freeze', 'thaw'


class AgentPauseWindow(AgentWindow):
    level = CRASH
    description = 'paused by the compute-side agent'
    take, release = 'pause', 'resume'


def held_through(window, reached_ms):
    """Whether the window held the guest still when a drive's instant was
    reached ``reached_ms`` after it opened. After a hold that ended early,
    only an instant seen within the time the hold lasted is sure to be
    inside it: the lease's ``held_ms`` counts from before the hold was
    asked, the drives from once it was taken (``open_ms`` later)."""
    if window.held:
        return True
    return (window.held_ms is not None
            and window.open_ms + reached_ms <= window.held_ms)


def achieved(window, requested, reached_ms=()):
    """The consistency a closed window gave, the drives' instants having
    been reached ``reached_ms`` after it opened.

    A hold that ended early (the agent's watchdog) still gave its level if
    every drive was reached while it held. Otherwise the drives reached
    after it were each taken at their own instant: the set is ``none``
    when the caller asked for ``auto``, and fails otherwise.
    """
    if all(held_through(window, ms) for ms in reached_ms):
        return window.level
    if requested != AUTO:
        raise errors.CaptureFailed(
            'The guest was released (its time budget ran out) before every '
            'drive was captured, so the set is not %s-consistent; nothing '
            'was kept.' % requested)
    return NONE


_UNASKED = object()


def choose_window(consistency, plan, clients, clock=Clock, agent=None,
                  budget_s=60, agent_status=_UNASKED):
    """The window that reaches ``consistency`` for this plan, or an error.

    ``agent`` is the server's AgentClient, or None where no agent runs:
    then ``application`` cannot be reached and ``crash`` pauses through
    Nova. ``agent_status`` is what the agent just said of the server, None
    if it could not be asked (asked here when not given).
    """
    if consistency not in LEVELS:
        raise errors.ConsistencyUnavailable(
            'Unknown consistency %r; choose one of %s.'
            % (consistency, ', '.join(LEVELS)))
    if not plan.running:
        if consistency == APPLICATION:
            raise errors.ConsistencyUnavailable(
                'Server %s is %s: its guest agent cannot quiesce it. Ask '
                'for crash consistency: a server that is not running has '
                'every drive at one instant.'
                % (plan.server_name or plan.server_id, plan.status))
        return StillServerWindow() if consistency != NONE else NoWindow()
    if consistency == NONE:
        return NoWindow()
    name = plan.server_name or plan.server_id
    status = (agent_module.probe(agent, plan.server_id)
              if agent_status is _UNASKED else agent_status)
    if consistency in (APPLICATION, AUTO) and status and status.get(
            'guest_agent'):
        return AgentFreezeWindow(agent, plan.server_id, budget_s)
    if consistency == APPLICATION:
        if agent is None:
            why = 'no compute-side agent is configured'
        elif status is None:
            why = 'the compute-side agent does not answer'
        else:
            why = 'its guest agent (qemu-guest-agent) does not answer'
        raise errors.ConsistencyUnavailable(
            'Application consistency is not possible for server %s: %s.'
            % (name, why))
    if status is not None:
        return AgentPauseWindow(agent, plan.server_id, budget_s)
    return NovaPauseWindow(clients.nova, plan.server_id, clock=clock)
