"""Durable runs: what was asked, by whom, and everything that happened.

A run is a row. The view validates and enqueues (``QUEUED``); a worker
claims it (``RUNNING``, with a heartbeat), executes it through the
orchestration and records every step, every drive and every resource
created. A run whose worker stops beating is recovered by another worker.
No token or password is stored: the worker acts through ``trust_id``,
which is deleted when the run ends.
"""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from snapshot_dashboard.orchestration import retention

QUEUED = 'queued'
RUNNING = 'running'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
ENDED = (SUCCEEDED, FAILED)


class SnapshotRun(models.Model):
    STATES = ((QUEUED, _('Queued')), (RUNNING, _('Running')),
              (SUCCEEDED, _('Succeeded')), (FAILED, _('Failed')))

    id = models.UUIDField(primary_key=True, default=uuid.uuid4,
                          editable=False)
    # Who asked, for what.
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    user_name = models.CharField(max_length=255, blank=True)
    server_id = models.CharField(max_length=64)
    server_name = models.CharField(max_length=255, blank=True)
    devices = models.JSONField(null=True, help_text='None: every drive')
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    consistency = models.CharField(max_length=16)
    schedule = models.ForeignKey('Schedule', null=True, blank=True,
                                 on_delete=models.SET_NULL,
                                 related_name='runs')
    # How it went.
    state = models.CharField(max_length=16, choices=STATES, default=QUEUED,
                             db_index=True)
    step = models.CharField(max_length=32, blank=True)
    drives = models.JSONField(default=dict)  # device -> state
    events = models.JSONField(default=list)  # every step, in order
    resources = models.JSONField(default=list)  # every resource created
    window = models.JSONField(null=True)  # the open window, to close it
    achieved_consistency = models.CharField(max_length=16, blank=True)
    window_ms = models.IntegerField(null=True)
    set_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)  # in the user's words
    cleanup = models.TextField(blank=True)  # what a recovery did
    attempts = models.IntegerField(default=0)
    trust_id = models.CharField(max_length=64, blank=True)
    # Which worker holds it.
    worker = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ('-created_at',)
        indexes = [models.Index(fields=('state', 'heartbeat_at'))]

    def __str__(self):
        return '%s of %s (%s)' % (self.id, self.server_id, self.state)

    @property
    def ended(self):
        return self.state in ENDED



class Schedule(models.Model):
    """A backup schedule: the same run as the workflow's, on a timing, with
    retention. ``devices`` None is every drive, drives attached later
    included. The worker acts through ``trust_id`` (no expiry), deleted with
    the schedule. A schedule whose trust or server is gone is ``broken``
    with the reason, and no longer fires."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4,
                          editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    user_name = models.CharField(max_length=255, blank=True)
    server_id = models.CharField(max_length=64)
    server_name = models.CharField(max_length=255, blank=True)
    devices = models.JSONField(null=True, help_text='None: every drive')
    consistency = models.CharField(max_length=16)
    # Timing: the choice as the user made it, and its cron expression.
    timing = models.CharField(max_length=16)
    minute = models.IntegerField(default=0)
    hour = models.IntegerField(default=0)
    weekday = models.IntegerField(default=0)
    cron = models.CharField(max_length=255)
    timezone = models.CharField(max_length=64, default='UTC')
    name_template = models.CharField(max_length=255,
                                     default='{server} {schedule} {time}')
    keep_last = models.IntegerField(default=0)
    keep_daily = models.IntegerField(default=0)
    keep_weekly = models.IntegerField(default=0)
    keep_monthly = models.IntegerField(default=0)
    name = models.CharField(max_length=255)
    enabled = models.BooleanField(default=True)
    broken_reason = models.TextField(blank=True)
    trust_id = models.CharField(max_length=64, blank=True)
    next_run_at = models.DateTimeField(null=True)
    last_fired_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ('name',)
        indexes = [models.Index(fields=('enabled', 'next_run_at'))]

    def __str__(self):
        return self.name

    def rules(self):
        """The schedule's retention rules."""
        return retention.Rules(keep_last=self.keep_last,
                               keep_daily=self.keep_daily,
                               keep_weekly=self.keep_weekly,
                               keep_monthly=self.keep_monthly)
