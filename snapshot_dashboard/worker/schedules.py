"""Firing due backup schedules and pruning what they made.

A schedule fires once per due time, whichever worker sees it first: the
worker moves ``next_run_at`` from the value it read to the next fire after
now (compare and set), and only the worker whose update landed queues the
run. The next fire is computed from now, so a worker that was down for a
while fires a missed schedule once, not once per missed period.
"""

import logging

from django.utils import timezone as django_timezone

from snapshot_dashboard import models
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import timing

LOG = logging.getLogger(__name__)

BATCH = 100


def due(now):
    return models.Schedule.objects.filter(
        enabled=True, broken_reason='', next_run_at__lte=now).order_by(
            'next_run_at')


def fire_due(now=None):
    """Queue one run for each due schedule; returns the runs queued."""
    now = now or django_timezone.now()
    queued = []
    for schedule in due(now)[:BATCH]:
        try:
            following = schedule.next_fire(now)
        except timing.TimingError as e:
            mark_broken(schedule, str(e))
            continue
        if not models.Schedule.objects.filter(
                pk=schedule.pk, next_run_at=schedule.next_run_at).update(
                    next_run_at=following, last_fired_at=now):
            continue  # another worker fired it
        queued.append(schedule.queue_run(now))
    return queued


def mark_broken(schedule, reason):
    LOG.warning('Schedule %s is broken: %s', schedule.pk, reason)
    models.Schedule.objects.filter(pk=schedule.pk).update(
        broken_reason=reason, next_run_at=None)


def prune(clients, schedule):
    """Delete the schedule's sets its retention does not keep, each whole
    (image and every snapshot); a failed delete does not stop the rest.
    Returns (deleted ids, failures)."""
    doomed = schedule.sets_to_delete(
        sets.list_sets(clients, server_id=schedule.server_id))
    deleted, failures = [], []
    for snapshot_set in doomed:
        try:
            sets.delete_set(clients, snapshot_set.id)
            deleted.append(snapshot_set.id)
        except Exception as e:
            LOG.warning('Schedule %s: could not delete set %s: %s',
                        schedule.pk, snapshot_set.id, e)
            failures.append('%s: %s' % (snapshot_set.id, e))
    return deleted, failures
