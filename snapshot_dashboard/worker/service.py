"""The worker's loop: recover a stale run, else execute a queued one."""

import logging
import os
import socket

from snapshot_dashboard import credentials
from snapshot_dashboard.worker import runs
from snapshot_dashboard.worker import schedules

LOG = logging.getLogger(__name__)


class Worker:
    def __init__(self, executor, poll_s=1.0, stale_s=runs.STALE_S):
        self.name = executor.worker
        self.executor = executor
        self.poll_s = poll_s
        self.stale_s = stale_s

    def once(self):
        """Queue the due schedules' runs, then recover one stale run, retry
        one hold left unreleased, or execute one queued run; False if there
        was nothing to do."""
        schedules.fire_due()
        stale = runs.claim_stale(self.name, self.stale_s)
        if stale is not None:
            self.executor.recover(stale)
            return True
        unreleased = runs.claim_unreleased(self.name, self.stale_s)
        if unreleased is not None:
            self.executor.release(unreleased)
            return True
        queued = runs.claim_queued(self.name)
        if queued is not None:
            self.executor.execute(queued)
            return True
        return False

    def serve(self, stopping):
        LOG.info('Worker %s started', self.name)
        while not stopping.is_set():
            try:
                busy = self.once()
            except Exception:
                LOG.exception('Worker %s: unexpected error', self.name)
                busy = False
            if not busy:
                stopping.wait(self.poll_s)
        LOG.info('Worker %s stopped', self.name)


def default_name():
    return '%s:%d' % (socket.gethostname(), os.getpid())


def make_worker(name=None, poll_s=1.0, heartbeat_s=runs.HEARTBEAT_S,
                stale_s=runs.STALE_S):
    executor = runs.Executor(
        name or default_name(), credentials.trust_session,
        credentials.service_session,
        agent_locator=credentials.agent_locator(), heartbeat_s=heartbeat_s)
    return Worker(executor, poll_s=poll_s, stale_s=stale_s)
