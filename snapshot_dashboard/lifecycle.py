"""The life of a run, a schedule and their trusts, whoever asks: Horizon's
views (``api``) and the REST API (``restapi``) both call these with a
``credentials.Caller``, after checking what was asked with the pre-flight.

A run or a schedule is saved with a trust from the caller to the service
user, through which the worker acts; whatever fails after the trust was
made deletes it again, so no permission outlives what it was given for.
"""

import datetime
import logging
import string

from django.conf import settings
from django.utils import timezone

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard.orchestration import retention
from snapshot_dashboard.orchestration import timing
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)

RUN_TRUST_HOURS = 24
# The agent's lease is the budget plus the watchdog's margin, and the agent
# grants at most its max_budget (300 s by default): the API stays below it.
MAX_BUDGET_S = 240
DEFAULT_MIN_INTERVAL_S = 3600
NAME_FIELDS = ('server', 'schedule', 'time')
KEEP_FIELDS = ('keep_last', 'keep_daily', 'keep_weekly', 'keep_monthly')
MAX_KEEP = 10000
# Every field of a schedule a caller sets, and its default.
SCHEDULE_FIELDS = {
    'name': None, 'server_id': None, 'server_name': '', 'devices': None,
    'consistency': window_module.AUTO, 'timing': timing.DAILY, 'minute': 0,
    'hour': 0, 'weekday': 0, 'cron': '', 'timezone': 'UTC',
    'name_template': '{server} {schedule} {time}', 'keep_last': 0,
    'keep_daily': 0, 'keep_weekly': 0, 'keep_monthly': 0,
}


class InvalidRequest(ValueError):
    """What was asked cannot be done; the message says why."""


class TrustNotDeleted(Exception):
    """The permission given to a schedule could not be revoked."""


def min_interval_s():
    return getattr(settings, 'SNAPSHOT_DASHBOARD_MIN_SCHEDULE_INTERVAL_S',
                   DEFAULT_MIN_INTERVAL_S)


def check_budget(budget_s):
    if not isinstance(budget_s, int) or isinstance(budget_s, bool) or not (
            0 < budget_s <= MAX_BUDGET_S):
        raise InvalidRequest('budget_s must be a whole number of seconds '
                             'from 1 to %d.' % MAX_BUDGET_S)
    return budget_s


def check_name_template(template):
    """Only ``{server}``, ``{schedule}`` and ``{time}``, as they are: no
    format spec (``{time:>999999999}`` would allocate a gigabyte)."""
    message = 'Set names may use {server}, {schedule} and {time} only.'
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise InvalidRequest(message) from None
    for _, field, spec, conversion in parts:
        if field is not None and (field not in NAME_FIELDS or spec
                                  or conversion):
            raise InvalidRequest(message)
    return template


def check_schedule(fields, now=None):
    """The schedule's timing, retention and set names checked, with its
    cron expression filled in; raises InvalidRequest saying what is
    wrong."""
    checked = dict(fields)
    for name, low, high in (('minute', 0, 59), ('hour', 0, 23),
                            ('weekday', 0, 6)):
        value = checked.get(name) or 0
        if not isinstance(value, int) or not low <= value <= high:
            raise InvalidRequest('%s must be a whole number from %d to %d.'
                                 % (name, low, high))
        checked[name] = value
    try:
        checked['cron'] = timing.cron_for(
            checked.get('timing'), checked['minute'], checked['hour'],
            checked['weekday'], checked.get('cron') or '')
        timing.check(checked['cron'], checked.get('timezone') or 'UTC',
                     min_interval_s(), now or timezone.now())
    except timing.TimingError as e:
        raise InvalidRequest(str(e)) from e
    for name in KEEP_FIELDS:
        value = checked.get(name) or 0
        if not isinstance(value, int) or not 0 <= value <= MAX_KEEP:
            raise InvalidRequest('%s must be a whole number from 0 to %d.'
                                 % (name, MAX_KEEP))
        checked[name] = value
    try:
        retention.Rules(**{name: checked[name] for name in KEEP_FIELDS})
    except ValueError as e:
        raise InvalidRequest(str(e)) from e
    check_name_template(checked.get('name_template') or '')
    return checked


def queue_run(caller, server_id, server_name, devices, name, description,
              consistency, budget_s=None):
    """Queue a run for the worker, with a trust from the caller to the
    service user that ends with the run."""
    return _with_run_trust(caller, lambda trust_id: models.SnapshotRun.queue(
        project_id=caller.project_id, user_id=caller.user_id,
        user_name=caller.user_name, server_id=server_id,
        server_name=server_name, devices=devices, name=name,
        description=description, consistency=consistency,
        budget_s=budget_s, trust_id=trust_id))


def _with_run_trust(caller, save):
    """``save(trust_id)`` with a new trust from the caller that lasts as
    long as a run may; the trust goes if the run cannot be saved."""
    trust = credentials.create_trust(
        caller, datetime.timedelta(hours=RUN_TRUST_HOURS))
    try:
        return save(trust.id)
    except Exception:
        # No run to act for: the permission goes too.
        credentials.delete_trust(trust.id)
        raise


def queue_restore(caller, snapshot_set, devices, attach_to, in_place=False,
                  budget_s=None):
    """Queue the restore of ``devices`` of the set as new volumes (or
    ``in_place``), with a trust from the caller that ends with the run."""
    return _with_run_trust(
        caller, lambda trust_id: models.SnapshotRun.queue_restore(
            project_id=caller.project_id, user_id=caller.user_id,
            user_name=caller.user_name, snapshot_set=snapshot_set,
            devices=devices, attach_to=attach_to, trust_id=trust_id,
            action=models.RESTORE_IN_PLACE if in_place
            else models.RESTORE_VOLUMES, budget_s=budget_s))


def create_schedule(caller, **fields):
    """A schedule with a trust from the caller to the service user that
    lasts as long as the schedule (no expiry)."""
    trust = credentials.create_trust(caller)
    try:
        schedule = models.Schedule(
            project_id=caller.project_id, user_id=caller.user_id,
            user_name=caller.user_name, trust_id=trust.id, **fields)
        schedule.next_run_at = schedule.next_fire()
        schedule.save()
    except Exception:
        credentials.delete_trust(trust.id)
        raise
    return schedule


def update_schedule(schedule, **fields):
    """Change only ``fields`` (and the next fire): what a worker wrote
    meanwhile (a fire, a break) stays."""
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.next_run_at = schedule.next_fire()
    schedule.save(update_fields=[*fields, 'next_run_at'])
    return schedule


def delete_schedule(schedule):
    """Delete the schedule and its trust; its sets stay. If the trust
    cannot be deleted, the schedule is kept, paused, so the permission is
    not left without a record: raises TrustNotDeleted."""
    update_schedule(schedule, enabled=False)
    if not credentials.delete_trust(schedule.trust_id):
        raise TrustNotDeleted(
            'The permission given to schedule %s (its Keystone trust) could '
            'not be revoked; the schedule is paused and kept. Try again.'
            % schedule.name)
    schedule.delete()
