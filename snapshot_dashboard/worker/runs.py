"""The worker's part of a run: claim it, execute it, record it, recover it.

Claiming is a compare-and-set UPDATE (``state=queued`` -> ``running``), so
two workers never take the same run on any database; on MySQL/MariaDB and
PostgreSQL the candidates are also read ``FOR UPDATE SKIP LOCKED`` so
workers do not even contend. A running run carries a heartbeat; one whose
heartbeat stopped (its worker was killed) is claimed by another worker,
which closes the window it left open, removes everything it made (the
resources carry the run's id) and queues it again, or fails it after
``MAX_ATTEMPTS``.
"""

import datetime
import logging
import threading

from django.db import DatabaseError
from django.db import connection
from django.db import transaction
from django.utils import timezone
from keystoneauth1 import exceptions as ks_exceptions

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import recovery
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.worker import schedules

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
HEARTBEAT_S = 5
STALE_S = 30


def _candidates(queryset):
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def claim(worker, queryset, **changes):
    """Take one run of ``queryset`` for ``worker``; None if none is free."""
    with transaction.atomic():
        for run in _candidates(queryset.order_by('created_at'))[:10]:
            taken = take(worker, run, **changes)
            if taken is not None:
                return taken
    return None


def take(worker, run, **changes):
    """Compare and set: ``run`` as it was read becomes ``worker``'s, unless
    another worker changed it since."""
    if models.SnapshotRun.objects.filter(
            pk=run.pk, state=run.state, worker=run.worker,
            heartbeat_at=run.heartbeat_at).update(
                worker=worker, heartbeat_at=timezone.now(), **changes):
        return models.SnapshotRun.objects.get(pk=run.pk)
    return None


def claim_queued(worker):
    """The oldest queued run of a server no other run is working on (the
    agent would refuse a second hold of the same guest anyway)."""
    busy = models.SnapshotRun.objects.filter(
        state=models.RUNNING).values('server_id')
    return claim(worker, models.SnapshotRun.objects.filter(
        state=models.QUEUED).exclude(server_id__in=busy),
        state=models.RUNNING, started_at=timezone.now())


def claim_stale(worker, stale_s=STALE_S):
    limit = timezone.now() - datetime.timedelta(seconds=stale_s)
    return claim(worker, models.SnapshotRun.objects.filter(
        state=models.RUNNING, heartbeat_at__lt=limit))


class Recorder:
    """The orchestration's progress callback, written to the run's row:
    each event's fields, as the orchestration typed them."""

    FIELDS = ['step', 'drives', 'events', 'resources', 'window']

    def __init__(self, run):
        self.run = run
        self.lock = threading.Lock()

    def __call__(self, event):
        run = self.run
        with self.lock:
            run.events.append(dict(event.to_dict(),
                                   at=timezone.now().isoformat()))
            if event.step == events.RESOURCE:
                run.resources.append(event.resource.to_dict())
            else:
                run.step = event.step
            done = event.state == events.DONE
            if event.step == events.PLAN and done:
                run.drives = dict.fromkeys(event.drives, models.QUEUED)
            if event.step == events.CAPTURE and event.device:
                run.drives[event.device] = (
                    'capturing' if event.state == events.STARTED
                    else 'captured')
            if event.step == events.OPEN_WINDOW and done:
                run.window = event.window
            if event.step == events.CLOSE_WINDOW and done:
                run.window = None
            models.SnapshotRun.objects.filter(pk=run.pk).update(
                **{f: getattr(run, f) for f in self.FIELDS})


class Heartbeat:
    """Beats while a run executes; stops beating if the process dies."""

    def __init__(self, run, worker, interval_s=HEARTBEAT_S):
        self.run = run
        self.worker = worker
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name='heartbeat-%s' % run.pk)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def _beat(self):
        try:
            while not self.stopped.wait(self.interval_s):
                try:
                    models.SnapshotRun.objects.filter(
                        pk=self.run.pk, worker=self.worker).update(
                            heartbeat_at=timezone.now())
                except DatabaseError:
                    # One lost connection must not end the heartbeats: the
                    # next beat opens another.
                    LOG.exception('Heartbeat of run %s failed', self.run.pk)
                    connection.close()
        finally:
            connection.close()


class Executor:
    """Runs claimed runs through the orchestration, with the trust."""

    def __init__(self, worker, trust_session, service_session,
                 agent_locator=None, heartbeat_s=HEARTBEAT_S):
        self.worker = worker
        self.trust_session = trust_session  # trust id -> session
        self.service_session = service_session  # () -> session
        self.agent_locator = agent_locator
        self.heartbeat_s = heartbeat_s

    def clients(self, run):
        return clients_module.Clients(self.trust_session(run.trust_id))

    def execute(self, run):
        """Take the run's set, prune its schedule's, end it: all under the
        heartbeat, so a long prune does not look like a dead worker."""
        LOG.info('Run %s: %s of server %s', run.pk, run.devices or 'all',
                 run.server_id)
        with Heartbeat(run, self.worker, self.heartbeat_s):
            self._execute(run)
        return run

    def _execute(self, run):
        recorder = Recorder(run)
        try:
            snapshot_set = run_module.create_snapshot_set(
                self.clients(run), run.server_id, devices=run.devices,
                name=run.name or None, description=run.description,
                consistency=run.consistency, budget_s=run.budget_s,
                wait=True, progress=recorder,
                agent_locator=self.agent_locator, run_id=str(run.pk),
                schedule_id=str(run.schedule_id) if run.schedule_id
                else None)
        except errors.ServerNotFound as e:
            self._broken(run, 'The server is gone (%s).' % run.server_id)
            self._end(run, models.FAILED, error=str(e))
        except errors.SnapshotSetError as e:
            self._end(run, models.FAILED, error=str(e),
                      cleanup=_rollback_text(e))
        except ks_exceptions.Unauthorized:
            self._broken(run, 'The permission given to this schedule (its '
                         'Keystone trust) is gone; create the schedule '
                         'again.')
            self._end(run, models.FAILED, error=(
                'The permission you gave for this snapshot set has expired '
                'or was revoked; take it again.'))
        except Exception as e:
            LOG.exception('Run %s failed', run.pk)
            self._end(run, models.FAILED, error=(
                'The snapshot set could not be taken: %s. Nothing was kept.'
                % e), cleanup=_rollback_text(e))
        else:
            self._end(run, models.SUCCEEDED, set_id=snapshot_set.id,
                      achieved_consistency=snapshot_set.consistency,
                      window_ms=snapshot_set.window_ms,
                      drives={d.name: 'captured'
                              for d in snapshot_set.drives},
                      cleanup=self._prune(run))

    def _prune(self, run):
        """After a scheduled run: its schedule's retention."""
        if run.schedule_id is None:
            return ''
        try:
            schedule = models.Schedule.objects.get(pk=run.schedule_id)
            deleted, failures = schedules.prune(self.clients(run), schedule)
        except Exception as e:
            LOG.exception('Pruning after run %s failed', run.pk)
            return 'retention could not run: %s' % e
        text = 'retention deleted %s' % (', '.join(deleted) or 'nothing')
        if failures:
            text += '; could not delete %s' % '; '.join(failures)
        return text

    def _broken(self, run, reason):
        if run.schedule_id is not None:
            schedule = models.Schedule.objects.filter(
                pk=run.schedule_id).first()
            if schedule is not None:
                schedules.mark_broken(schedule, reason)

    def recover(self, run):
        """Close what a dead worker left open, remove what it made; queue
        the run again, or fail it after MAX_ATTEMPTS."""
        LOG.warning('Run %s lost its worker; recovering it', run.pk)
        try:
            # Beats too: waiting for Nova to let a pause go can be long.
            with Heartbeat(run, self.worker, self.heartbeat_s):
                user_clients = self.clients(run)
                closed = recovery.close_window(user_clients, run.server_id,
                                               run.window)
                deleted, failures = recovery.remove_leftovers(
                    user_clients, str(run.pk))
                copies = run.resource_ids(events.AGENT_COPY)
                if copies and (run.window or {}).get('agent'):
                    deleted += recovery.remove_copies(
                        user_clients, run.server_id, run.window['agent'],
                        copies)
        except Exception as e:
            LOG.exception('Recovering run %s failed', run.pk)
            self._end(run, models.FAILED, error=(
                'The snapshot set was interrupted and could not be cleaned '
                'up automatically: %s' % e))
            return run
        cleanup = 'window: %s; deleted: %s%s' % (
            closed, ', '.join(deleted) or 'nothing',
            '; could not delete: %s' % ', '.join(failures)
            if failures else '')
        if run.attempts + 1 < MAX_ATTEMPTS and not failures:
            models.SnapshotRun.objects.filter(pk=run.pk,
                                              worker=self.worker).update(
                state=models.QUEUED, worker='', heartbeat_at=None,
                attempts=run.attempts + 1, window=None, step='',
                cleanup=cleanup, resources=[])
            run.refresh_from_db()
            return run
        self._end(run, models.FAILED, cleanup=cleanup, error=(
            'The snapshot set was interrupted (its worker stopped) and '
            'nothing was kept.'))
        return run

    def _end(self, run, state, **fields):
        if run.schedule_id is None:
            # A run's own trust ends with it; a schedule's lives on.
            self._delete_trust(run)
        fields.update(state=state, finished_at=timezone.now(), window=None,
                      trust_id='')
        # What a recovery did before this attempt stays on record.
        fields['cleanup'] = '; '.join(
            text for text in (run.cleanup, fields.get('cleanup')) if text)
        models.SnapshotRun.objects.filter(pk=run.pk).update(**fields)
        run.refresh_from_db()
        LOG.info('Run %s %s%s', run.pk, state,
                 ': %s' % run.error if run.error else '')

    def _delete_trust(self, run):
        if run.trust_id:
            credentials.delete_trust(run.trust_id, self.service_session())


def _rollback_text(error):
    failures = getattr(error, 'rollback_failures', None)
    if failures:
        return 'could not undo: %s' % '; '.join(failures)
    return ''
