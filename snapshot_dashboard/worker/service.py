"""The worker's loop: recover a stale run, else execute a queued one; now
and then, reap what dead runs left."""

import logging
import os
import socket
import time
import uuid

from django import db

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import reaper as reaper_module
from snapshot_dashboard.worker import runs
from snapshot_dashboard.worker import schedules

LOG = logging.getLogger(__name__)

REAP_INTERVAL_S = 600


def is_live(run_id):
    """Whether a durable run with this id may still make or hold
    something (a CLI run has no row: it is live only within the grace)."""
    try:
        uuid.UUID(run_id)
    except ValueError:
        return False
    return models.SnapshotRun.objects.filter(pk=run_id).exclude(
        state__in=models.ENDED, holding_server__isnull=True).exists()


def agents(clients):
    """The agent of every compute host (``SNAPSHOT_DASHBOARD_AGENT_URL``),
    acting as the service user; none when no agent runs, or when Nova
    cannot list the hosts now (the copies wait for the next pass, or for
    the agent's own ``capture_keep``)."""
    locator = credentials.agent_locator()
    if locator is None:
        return []
    try:
        return locator.every(clients)
    except Exception:
        LOG.exception('Reaper could not list the compute hosts')
        return []


def reap(clients, grace_s=reaper_module.DEFAULT_GRACE_S, now=None):
    """Delete what dead runs left in every project (``clients``: the
    service user's) and the agents' copies, and record it for admins;
    returns the records."""
    deleted, failures = reaper_module.reap(clients, is_live, grace_s, now,
                                           agents(clients))
    records = [models.ReapedResource.objects.create(
        kind=leftover.kind, resource_id=leftover.id,
        run_id=leftover.run_id, project_id=leftover.project_id,
        resource_created_at=leftover.created_at, outcome=outcome)
        for leftover, outcome in deleted + failures]
    models.ReapedResource.objects.filter(
        reaped_at__lt=runs.ago(models.ReapedResource.KEEP_DAYS * 86400)
    ).delete()
    return records


class Worker:
    def __init__(self, executor, poll_s=1.0, stale_s=runs.STALE_S,
                 reap_interval_s=REAP_INTERVAL_S,
                 reap_grace_s=reaper_module.DEFAULT_GRACE_S):
        self.name = executor.worker
        self.executor = executor
        self.poll_s = poll_s
        self.stale_s = stale_s
        self.reap_interval_s = reap_interval_s
        self.reap_grace_s = reap_grace_s
        self.reaped_at = None

    def reap_if_due(self):
        """Reap every ``reap_interval_s`` (0: never). Several workers may
        reap at once: a resource deleted twice is simply gone."""
        if not self.reap_interval_s:
            return
        now = time.monotonic()
        if (self.reaped_at is not None
                and now - self.reaped_at < self.reap_interval_s):
            return
        self.reaped_at = now
        try:
            reap(clients_module.Clients(self.executor.service_session()),
                 self.reap_grace_s)
        except Exception:
            LOG.exception('Worker %s: the reaper failed', self.name)

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
            # As Django does around a request: a connection past
            # CONN_MAX_AGE, or broken (a database restarted), is replaced.
            db.close_old_connections()
            self.reap_if_due()
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
                stale_s=runs.STALE_S, reap_interval_s=REAP_INTERVAL_S,
                reap_grace_s=reaper_module.DEFAULT_GRACE_S):
    executor = runs.Executor(
        name or default_name(), credentials.trust_session,
        credentials.service_session,
        agent_locator=credentials.agent_locator(), heartbeat_s=heartbeat_s)
    return Worker(executor, poll_s=poll_s, stale_s=stale_s,
                  reap_interval_s=reap_interval_s, reap_grace_s=reap_grace_s)
