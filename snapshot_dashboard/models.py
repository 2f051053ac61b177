"""Durable runs and backup schedules: what was asked, by whom, and
everything that happened.

A run is a row. The view validates and queues it (``SnapshotRun.queue``,
``QUEUED``); a worker claims it (``RUNNING``, with a heartbeat), executes it
through the orchestration and records every step, every drive and every
resource created. A run whose worker stops beating is recovered by another
worker. No token or password is stored: the worker acts through
``trust_id``. A run's own trust is deleted when the run ends; a run of a
schedule acts through the schedule's trust, deleted with the schedule.
"""

import logging
import uuid

from django.db import models
from django.utils import timezone as django_timezone
from django.utils.translation import gettext_lazy as _

from snapshot_dashboard.orchestration import retention
from snapshot_dashboard.orchestration import timing

LOG = logging.getLogger(__name__)

QUEUED = 'queued'
RUNNING = 'running'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
ENDED = (SUCCEEDED, FAILED)
DEFAULT_BUDGET_S = 60
# What a run does.
CREATE = 'create'  # take a snapshot set of the server
RESTORE_VOLUMES = 'restore-volumes'  # drives of set_id as new volumes
RESTORE_IN_PLACE = 'restore-in-place'  # drives of set_id into its server
RESTORES = (RESTORE_VOLUMES, RESTORE_IN_PLACE)
# The runs that act on their server (one at a time per server).
HOLDING_ACTIONS = (CREATE, RESTORE_IN_PLACE)


class SnapshotRun(models.Model):
    STATES = ((QUEUED, _('Queued')), (RUNNING, _('Running')),
              (SUCCEEDED, _('Succeeded')), (FAILED, _('Failed')))
    ACTIONS = ((CREATE, _('Take a snapshot set')),
               (RESTORE_VOLUMES, _('Restore drives as new volumes')),
               (RESTORE_IN_PLACE, _('Restore drives in place')))

    id = models.UUIDField(primary_key=True, default=uuid.uuid4,
                          editable=False)
    # Who asked, for what. A restore's server_id is the set's server, its
    # set_id the set it restores from.
    action = models.CharField(max_length=32, choices=ACTIONS, default=CREATE)
    attach_to = models.CharField(max_length=64, blank=True)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64)
    user_name = models.CharField(max_length=255, blank=True)
    server_id = models.CharField(max_length=64)
    server_name = models.CharField(max_length=255, blank=True)
    devices = models.JSONField(null=True, help_text='None: every drive')
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    consistency = models.CharField(max_length=16)
    # Longest the guest may be held still, in seconds.
    budget_s = models.IntegerField(default=DEFAULT_BUDGET_S)
    schedule = models.ForeignKey('Schedule', null=True, blank=True,
                                 on_delete=models.SET_NULL,
                                 related_name='runs')
    # How it went.
    state = models.CharField(max_length=16, choices=STATES, default=QUEUED,
                             db_index=True)
    step = models.CharField(max_length=32, blank=True)
    drives = models.JSONField(default=dict)  # device -> state
    events = models.JSONField(default=list)  # events.Event.to_dict()s
    resources = models.JSONField(default=list)  # events.Resource dicts
    window = models.JSONField(null=True)  # the open window, to close it
    achieved_consistency = models.CharField(max_length=16, blank=True)
    window_ms = models.IntegerField(null=True)
    set_id = models.CharField(max_length=64, blank=True)
    # A restore in place's safety set: restoring it undoes the restore.
    undo_set_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)  # in the user's words
    cleanup = models.TextField(blank=True)  # what a recovery did
    attempts = models.IntegerField(default=0)
    trust_id = models.CharField(max_length=64, blank=True)
    # Which worker holds it. ``claim`` is new at every claim: each write
    # of a running run is fenced by it, so a worker that lost the run (it
    # stopped beating and another took over) changes nothing. ``heartbeat_at``
    # is the database's time, never a host's.
    worker = models.CharField(max_length=255, blank=True)
    claim = models.CharField(max_length=36, blank=True)
    heartbeat_at = models.DateTimeField(null=True)
    # The server while the run may act on it (running, or a hold still to
    # be released): unique, so the database itself keeps one run per
    # server. NULL otherwise (NULLs do not collide on any database).
    holding_server = models.CharField(max_length=64, null=True, unique=True)
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

    def resource_ids(self, kind):
        """The ids of the resources of ``kind`` (``events.IMAGE``, ...)
        the run recorded creating."""
        return [r['id'] for r in self.resources if r['kind'] == kind]

    @classmethod
    def queue(cls, *, project_id, user_id, user_name, server_id, server_name,
              devices, name, consistency, trust_id, description='',
              budget_s=None, schedule=None):
        """Queue a run for the workers: the one way a run row is made."""
        return cls.objects.create(
            project_id=project_id, user_id=user_id, user_name=user_name or '',
            server_id=server_id, server_name=server_name or '',
            devices=devices, name=name or '', description=description or '',
            consistency=consistency, schedule=schedule, trust_id=trust_id,
            budget_s=budget_s or DEFAULT_BUDGET_S,
            drives=dict.fromkeys(devices or [], QUEUED))

    @classmethod
    def queue_restore(cls, *, project_id, user_id, user_name, snapshot_set,
                      devices, attach_to, trust_id, action=RESTORE_VOLUMES,
                      budget_s=None):
        """Queue the restore of ``devices`` (None: every drive) of the set
        as new volumes, attached to ``attach_to`` (a server id, or ''), or
        with ``RESTORE_IN_PLACE`` into the set's server (its safety set
        held still at most ``budget_s``)."""
        return cls.objects.create(
            action=action, budget_s=budget_s or DEFAULT_BUDGET_S,
            project_id=project_id, user_id=user_id,
            user_name=user_name or '', server_id=snapshot_set.server_id,
            set_id=snapshot_set.id, name=snapshot_set.name[:255],
            devices=devices, attach_to=attach_to or '', consistency='',
            trust_id=trust_id, drives=dict.fromkeys(devices or [], QUEUED))


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

    def sets_to_delete(self, server_sets, upcoming_at=None):
        """Which of the server's sets ``server_sets`` the schedule's
        retention deletes: now, or with ``upcoming_at`` once its next set
        (taken then) is made. Sets it did not make are never among them."""
        return retention.schedule_sets_to_delete(
            server_sets, str(self.pk), self.rules(), self.timezone,
            upcoming_at=upcoming_at)

    def next_fire(self, after=None):
        """When the schedule fires next after ``after`` (now), or None if
        it is paused or broken; raises timing.TimingError if its timing
        cannot be used."""
        if not self.enabled or self.broken_reason:
            return None
        return timing.next_fire(self.cron, self.timezone,
                                after or django_timezone.now())

    def set_name(self, when):
        """The name of the set the schedule takes at ``when``."""
        local = when.astimezone(timing.zone(self.timezone))
        return self.name_template.format(
            server=self.server_name or self.server_id, schedule=self.name,
            time=local.strftime('%Y-%m-%d %H:%M'))

    def queue_run(self, now=None):
        """Queue a run of the schedule, through the schedule's trust."""
        run = SnapshotRun.queue(
            project_id=self.project_id, user_id=self.user_id,
            user_name=self.user_name, server_id=self.server_id,
            server_name=self.server_name, devices=self.devices,
            name=self.set_name(now or django_timezone.now()),
            consistency=self.consistency, schedule=self,
            trust_id=self.trust_id)
        LOG.info('Schedule %s queued run %s', self.pk, run.pk)
        return run


class ReapedResource(models.Model):
    """A volume snapshot, image or agent copy the reaper deleted (or
    could not): left by a run that died (neither live nor part of a set),
    in any project. Shown to admins (``GET /v1/reaped``), kept
    ``KEEP_DAYS``."""

    KEEP_DAYS = 90

    kind = models.CharField(max_length=32)  # events.Resource kinds
    resource_id = models.CharField(max_length=64)
    run_id = models.CharField(max_length=64, db_index=True)
    project_id = models.CharField(max_length=64, db_index=True)
    resource_created_at = models.CharField(max_length=64, blank=True)
    reaped_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # 'deleted' (and how, when it took more), or 'not deleted: <why>'.
    outcome = models.TextField()

    @property
    def deleted(self):
        return self.outcome.startswith('deleted')

    class Meta:
        ordering = ('-reaped_at',)

    def __str__(self):
        return '%s %s of run %s: %s' % (self.kind, self.resource_id,
                                        self.run_id, self.outcome)
