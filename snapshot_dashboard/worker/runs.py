"""The worker's part of a run: claim it, execute it, record it, recover it.

Claiming is a compare-and-set UPDATE (``state=queued`` -> ``running``) that
gives the run a new ``claim`` token, so two workers never take the same run
on any database; on MySQL/MariaDB and PostgreSQL the candidates are also
read ``FOR UPDATE SKIP LOCKED`` so workers do not even contend. A running
run holds its server (``holding_server``, unique): the database itself
keeps one run per server.

Every later write of the run is fenced by its claim: a write that hits no
row means another worker took the run over, and the worker stops acting on
it (``errors.Superseded``), undoing nothing. A running run carries a
heartbeat in the database's time; one whose heartbeat stopped (its worker
was killed, or lost the database) is claimed by another worker, which
releases the hold it left or began (the window is recorded before it is
opened), keeps the set if it was already packaged, else removes everything
the run made (its resources carry the run's id) and queues it again, or
fails it after ``MAX_ATTEMPTS``. A hold that could not be released is kept
on the ended run and retried until it is.
"""

import datetime
import logging
import threading
import time
import uuid

from django.db import DatabaseError
from django.db import IntegrityError
from django.db import connection
from django.db import models as db_models
from django.db import transaction
from django.db.models import functions
from keystoneauth1 import exceptions as ks_exceptions

from snapshot_dashboard import credentials
from snapshot_dashboard import models
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import recovery
from snapshot_dashboard.orchestration import restore
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module
from snapshot_dashboard.worker import schedules

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
HEARTBEAT_S = 5
STALE_S = 30


def ago(seconds):
    """The database's now less ``seconds``: staleness never depends on the
    clock of the host that asks."""
    return db_models.ExpressionWrapper(
        functions.Now() - datetime.timedelta(seconds=seconds),
        output_field=db_models.DateTimeField())


def _candidates(queryset):
    """The rows to try: the first one no other worker has locked, where
    the database can skip locked rows (it locks only that one); else the
    first ten, each then tried with a compare-and-set."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)[:1]
    return queryset[:10]


def claim(worker, queryset, hold=False, still=None, **changes):
    """Take one run of ``queryset`` for ``worker``; None if none is free.
    With ``hold`` the run also takes its server; ``still`` are conditions
    the UPDATE checks again (say, that the run is still stale)."""
    with transaction.atomic():
        for run in _candidates(queryset.order_by('created_at')):
            taken = take(worker, run, hold=hold, still=still, **changes)
            if taken is not None:
                return taken
    return None


def take(worker, run, hold=False, still=None, **changes):
    """Compare and set: ``run`` as it was read becomes ``worker``'s under a
    new claim, unless another worker changed it since, or it no longer
    meets ``still``, or, with ``hold``, another run holds its server. The
    UPDATE names only this table's own row (MySQL refuses an UPDATE whose
    condition reads the same table)."""
    if hold and run.action in models.HOLDING_ACTIONS:
        # A restore as new volumes leaves the set's server alone.
        changes['holding_server'] = run.server_id
    try:
        with transaction.atomic():  # a savepoint inside claim()'s
            taken = models.SnapshotRun.objects.filter(
                pk=run.pk, state=run.state, claim=run.claim,
                **(still or {})).update(
                    worker=worker, claim=str(uuid.uuid4()),
                    heartbeat_at=functions.Now(), **changes)
    except IntegrityError:
        LOG.info('Run %s waits: another run holds server %s', run.pk,
                 run.server_id)
        return None
    return models.SnapshotRun.objects.get(pk=run.pk) if taken else None


def claim_queued(worker):
    """The oldest queued run: a restore, or a set of a server no other
    run holds."""
    busy = models.SnapshotRun.objects.filter(
        holding_server__isnull=False).values('holding_server')
    return claim(worker, models.SnapshotRun.objects.filter(
        state=models.QUEUED).exclude(server_id__in=busy,
                                     action__in=models.HOLDING_ACTIONS),
        hold=True,
        state=models.RUNNING, started_at=functions.Now())


def claim_stale(worker, stale_s=STALE_S):
    """A running run whose worker stopped beating."""
    stale = {'heartbeat_at__lt': ago(stale_s)}
    return claim(worker, models.SnapshotRun.objects.filter(
        state=models.RUNNING, **stale), still=stale)


def claim_unreleased(worker, stale_s=STALE_S):
    """An ended run whose hold could not be released, ``stale_s`` after the
    last try."""
    unreleased = {'holding_server__isnull': False,
                  'heartbeat_at__lt': ago(stale_s)}
    return claim(worker, models.SnapshotRun.objects.filter(
        state__in=models.ENDED, **unreleased), still=unreleased)


def write(run, **fields):
    """Update the run's row if ``run`` still holds its claim; raises
    errors.Superseded if another worker took it over."""
    if not models.SnapshotRun.objects.filter(
            pk=run.pk, claim=run.claim).update(**fields):
        raise errors.Superseded('Run %s was taken over by another worker.'
                                % run.pk)


# A drive's state in a run, by step: (started, done).
DRIVE_STATES = {events.CAPTURE: ('capturing', 'captured'),
                events.RESTORE: ('restoring', 'restored'),
                events.ATTACH: ('attaching', 'attached'),
                events.DETACH: ('detaching', 'detached'),
                events.REBUILD: ('restoring', 'restored'),
                events.WRITE: ('restoring', 'restored')}


class Recorder:
    """The orchestration's progress callback, written to the run's row:
    each event's fields, as the orchestration typed them. Raises
    errors.Superseded once the run is another worker's."""

    FIELDS = ['step', 'drives', 'events', 'resources', 'window', 'set_id',
              'undo_set_id']

    def __init__(self, run, heartbeat=None):
        self.run = run
        self.heartbeat = heartbeat
        self.lock = threading.Lock()
        self.in_window = False

    def _held_back(self, event):
        """Whether ``event`` waits in memory for the next one written.

        While the window is open (from its record with the lease to its
        close) the guest is not held for the database: a drive's progress,
        the close beginning, and the volume snapshots and images made (the
        recovery finds those by the run's tag) are written with the
        window's end. An agent's copy is written at once: the recovery
        knows it only from here.
        """
        if event.step == events.OPEN_WINDOW:
            self.in_window = event.state == events.DONE
            return False
        if not self.in_window:
            return False
        if event.step == events.RESOURCE:
            return event.resource.kind != events.AGENT_COPY
        if event.step == events.CLOSE_WINDOW and event.state != \
                events.STARTED:
            self.in_window = False
            return False
        return event.step in (events.CAPTURE, events.CLOSE_WINDOW)

    def __call__(self, event):
        run = self.run
        if self.heartbeat is not None and self.heartbeat.lost.is_set():
            raise errors.Superseded('Run %s is no longer this worker\'s.'
                                    % run.pk)
        with self.lock:
            run.events.append(dict(event.to_dict(),
                                   at=datetime.datetime.now(
                                       datetime.timezone.utc).isoformat()))
            if event.step == events.RESOURCE:
                run.resources.append(event.resource.to_dict())
            else:
                run.step = event.step
            done = event.state == events.DONE
            if event.step == events.PLAN and done:
                run.drives = dict.fromkeys(event.drives, models.QUEUED)
            if event.step in DRIVE_STATES and event.device:
                run.drives[event.device] = DRIVE_STATES[event.step][
                    event.state == events.DONE]
            if event.step == events.OPEN_WINDOW and event.window:
                # At started: the intent, before anything is held.
                run.window = event.window
            if event.step == events.CLOSE_WINDOW and done:
                run.window = None
            if event.step == events.PACKAGE and done:
                run.set_id = event.set_id  # a restore's is its source
            if event.step == events.SAFETY_SET and done:
                run.undo_set_id = event.set_id
            if self._held_back(event):
                return
            write(run, **{f: getattr(run, f) for f in self.FIELDS})


class Heartbeat:
    """Beats while a run executes; stops beating if the process dies.
    ``lost`` is set once a beat finds the run another worker's."""

    def __init__(self, run, interval_s=HEARTBEAT_S, lost_after_s=STALE_S / 2):
        self.run = run
        self.interval_s = interval_s
        # Cut off from the database this long, the run may be recovered by
        # another worker soon: this one stops before it could be.
        self.lost_after_s = lost_after_s
        self.stopped = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name='heartbeat-%s' % run.pk)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def _beat(self):
        beaten = time.monotonic()
        try:
            while not self.stopped.wait(self.interval_s):
                try:
                    write(self.run, heartbeat_at=functions.Now())
                    beaten = time.monotonic()
                except errors.Superseded:
                    LOG.warning('Run %s is another worker\'s now; this one '
                                'stops acting on it', self.run.pk)
                    self.lost.set()
                    return
                except DatabaseError:
                    # One lost connection must not end the heartbeats: the
                    # next beat opens another.
                    LOG.exception('Heartbeat of run %s failed', self.run.pk)
                    connection.close()
                    if time.monotonic() - beaten >= self.lost_after_s:
                        LOG.error('Run %s could not beat for %.0f s; this '
                                  'worker stops acting on it', self.run.pk,
                                  time.monotonic() - beaten)
                        self.lost.set()
                        return
        finally:
            connection.close()


class FencedClock:
    """The orchestration's clock for a run under ``heartbeat``: a wait
    ends, with errors.Superseded, once the run is lost (at once on the
    real clock)."""

    def __init__(self, heartbeat, base=window_module.Clock):
        self.heartbeat = heartbeat
        self.base = base

    def now(self):
        return self.base.now()

    def sleep(self, seconds):
        if self.base is window_module.Clock:
            lost = self.heartbeat.lost.wait(seconds)
        else:
            self.base.sleep(seconds)
            lost = self.heartbeat.lost.is_set()
        if lost:
            raise errors.Superseded('Run %s was taken over by another '
                                    'worker.' % self.heartbeat.run.pk)


class Executor:
    """Runs claimed runs through the orchestration, with the trust."""

    def __init__(self, worker, trust_session, service_session,
                 agent_locator=None, heartbeat_s=HEARTBEAT_S,
                 clock=window_module.Clock):
        self.worker = worker
        self.clock = clock
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
        self._fenced(self._execute, run)
        return run

    def recover(self, run):
        """Release what a dead worker held or began to hold; keep the set
        it packaged, else remove what it made and queue the run again (or
        fail it after MAX_ATTEMPTS)."""
        LOG.warning('Run %s lost its worker; recovering it', run.pk)
        self._fenced(self._recover, run)
        return run

    def _fenced(self, act, run):
        with Heartbeat(run, self.heartbeat_s) as heartbeat:
            try:
                act(run, FencedClock(heartbeat, self.clock), heartbeat)
            except errors.Superseded:
                LOG.warning('Run %s was taken over by another worker; %s '
                            'stopped acting on it', run.pk, self.worker)

    def _execute(self, run, clock, heartbeat=None):
        if run.action in models.RESTORES:
            self._restore(run, clock, heartbeat)
            return
        recorder = Recorder(run, heartbeat)
        try:
            snapshot_set = run_module.create_snapshot_set(
                self.clients(run), run.server_id, devices=run.devices,
                name=run.name or None, description=run.description,
                consistency=run.consistency, budget_s=run.budget_s,
                wait=True, progress=recorder, clock=clock,
                agent_locator=self.agent_locator, run_id=str(run.pk),
                schedule_id=str(run.schedule_id) if run.schedule_id
                else None)
        except errors.Superseded:
            raise
        except errors.ServerNotFound as e:
            self._broken(run, 'The server is gone (%s).' % run.server_id)
            self._end(run, models.FAILED, error=str(e))
        except errors.SnapshotSetError as e:
            self._end(run, models.FAILED, error=_failed(str(e), e),
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
            self._end(run, models.FAILED, error=_failed(
                'The snapshot set could not be taken: %s. Nothing was kept.'
                % e, e), cleanup=_rollback_text(e))
        else:
            self._succeed(run, snapshot_set)

    def _restore(self, run, clock, heartbeat=None):
        try:
            if run.action == models.RESTORE_IN_PLACE:
                safety = inplace.restore_in_place(
                    self.clients(run), run.set_id, devices=run.devices,
                    run_id=str(run.pk), progress=Recorder(run, heartbeat),
                    clock=clock, agent_locator=self.agent_locator,
                    budget_s=run.budget_s)
                restored = None
            else:
                restored = restore.restore_as_volumes(
                    self.clients(run), run.set_id, devices=run.devices,
                    attach_to=run.attach_to or None, run_id=str(run.pk),
                    progress=Recorder(run, heartbeat), clock=clock)
        except errors.Superseded:
            raise
        except errors.SnapshotSetError as e:
            self._end(run, models.FAILED, error=_failed(str(e), e),
                      cleanup=_rollback_text(e), **self._safety_kept(run))
        except ks_exceptions.Unauthorized:
            self._end(run, models.FAILED, error=(
                'The permission you gave for this restore has expired or '
                'was revoked; ask again.'))
        except Exception as e:
            LOG.exception('Run %s failed', run.pk)
            self._end(run, models.FAILED, error=_failed(
                'The drives could not be restored: %s' % e, e),
                cleanup=_rollback_text(e), **self._safety_kept(run))
        else:
            if restored is None:
                self._end(run, models.SUCCEEDED, undo_set_id=safety.id)
                return
            self._end(run, models.SUCCEEDED, drives={
                volume.device: 'attached' if volume.attached_as
                else 'restored' for volume in restored})

    def _succeed(self, run, snapshot_set, cleanup=''):
        self._end(run, models.SUCCEEDED, set_id=snapshot_set.id,
                  achieved_consistency=snapshot_set.consistency,
                  window_ms=snapshot_set.window_ms,
                  drives={d.name: 'captured' for d in snapshot_set.drives},
                  cleanup='; '.join(t for t in (cleanup, self._prune(run))
                                    if t))

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

    def _recover(self, run, clock, heartbeat=None):
        if run.action == models.RESTORE_VOLUMES:
            self._recover_restore(run, clock)
            return
        if run.action == models.RESTORE_IN_PLACE:
            self._recover_in_place(run, clock)
            return
        try:
            user_clients = self.clients(run)
            released, closed = recovery.close_window(
                user_clients, run.server_id, run.window, clock=clock)
            if released:
                run.window = None
            adopted = self._adopt(run, user_clients, clock)
            if adopted is not None:
                self._succeed(run, adopted, cleanup='window: %s; the set '
                              'was packaged, kept' % closed)
                return
            deleted, failures = self._remove_leftovers(run, user_clients)
        except errors.Superseded:
            raise
        except Exception as e:
            LOG.exception('Recovering run %s failed', run.pk)
            self._end(run, models.FAILED, error=(
                'The snapshot set was interrupted and could not be cleaned '
                'up automatically: %s' % e))
            return
        cleanup = 'window: %s; %s' % (closed,
                                      _removed_text(deleted, failures))
        if (released and run.attempts + 1 < MAX_ATTEMPTS
                and not failures):
            _requeue(run, cleanup, holding_server=None, window=None,
                     set_id='')
            return
        self._end(run, models.FAILED, cleanup=cleanup, error=(
            'The snapshot set was interrupted (its worker stopped) and '
            'nothing was kept.'))

    def _recover_restore(self, run, clock):
        """A restore whose worker died: the volumes it delivered are the
        user's and end it as done; else what it made goes (detached
        first) and it is queued again."""
        try:
            delivered, deleted, failures = restore.recover(
                self.clients(run), str(run.pk), run.set_id,
                run.attach_to or None, clock=clock)
        except errors.Superseded:
            raise
        except Exception as e:
            LOG.exception('Recovering run %s failed', run.pk)
            self._end(run, models.FAILED, error=(
                'The restore was interrupted and could not be cleaned up '
                'automatically: %s' % e))
            return
        if delivered:
            # Planned drives (the plan's record) missing: what was made is
            # the user's, the run says what is not there.
            missing = sorted(set(run.drives) - set(delivered))
            if missing:
                self._end(run, models.FAILED, drives=delivered, error=(
                    'The restore was interrupted (its worker stopped): %s '
                    'restored and kept; %s not.' % (
                        ', '.join(sorted(delivered)), ', '.join(missing))))
                return
            self._end(run, models.SUCCEEDED, cleanup='the restored volumes '
                      'were delivered before the worker stopped, kept',
                      drives=delivered)
            return
        cleanup = _removed_text(deleted, failures)
        if run.attempts + 1 < MAX_ATTEMPTS and not failures:
            _requeue(run, cleanup)  # its set_id is the set to restore
            return
        self._end(run, models.FAILED, cleanup=cleanup, error=(
            'The restore was interrupted (its worker stopped) and nothing '
            'was kept.'))

    def _recover_in_place(self, run, clock):
        """A restore in place whose worker died: done if it delivered its
        volumes; else the server is put back from its safety set, and
        what it made removed. Not queued again: the user sees the server
        as it was and decides."""
        started = {}
        for event in run.events:
            if event.get('state') == events.STARTED:
                started.setdefault(event['step'], []).append(
                    event.get('device'))
        try:
            user_clients = self.clients(run)
            released, closed = recovery.close_window(
                user_clients, run.server_id, run.window, clock=clock)
            if released:
                run.window = None
            outcome, safety, failures = inplace.recover(
                user_clients, str(run.pk), run.set_id, started,
                agent_locator=self.agent_locator, clock=clock)
            deleted, leftover_failures = [], []
            if outcome == 'untouched':
                # What the run's safety set had made is all there is to
                # remove; a safety set that was taken is recover()'s own
                # to keep (the undo, or the drives as they were) or delete.
                deleted, leftover_failures = self._remove_leftovers(
                    run, user_clients)
        except errors.Superseded:
            raise
        except Exception as e:
            LOG.exception('Recovering run %s failed', run.pk)
            self._end(run, models.FAILED, error=(
                'The restore was interrupted and the server could not be '
                'put back automatically: %s' % e))
            return
        cleanup = 'window: %s; %s' % (closed, _removed_text(
            deleted, failures + leftover_failures))
        if outcome == 'finished':
            self._end(run, models.SUCCEEDED, cleanup=cleanup,
                      undo_set_id=safety.id if safety else '',
                      drives=dict.fromkeys(run.drives, 'restored'))
            return
        error = 'The restore was interrupted (its worker stopped); %s' % (
            'nothing had been changed yet.' if outcome == 'untouched'
            else 'the server was put back as it was.' if not failures
            else 'the server could not be put back entirely: %s.'
            % '; '.join(failures))
        self._end(run, models.FAILED, cleanup=cleanup, error=error,
                  **self._safety_kept(run))

    def _remove_leftovers(self, run, clients):
        """A dead run's volume snapshots and images (by its tag) and its
        copies on the compute node: (deleted, failures)."""
        deleted, failures = recovery.remove_leftovers(clients, str(run.pk))
        copies = run.resource_ids(events.AGENT_COPY)
        agent_url = self._agent_url(run, clients)
        if copies and agent_url:
            deleted += recovery.remove_copies(clients, run.server_id,
                                              agent_url, copies)
        return deleted, failures

    def _safety_kept(self, run):
        """A failed restore's safety set, recorded only while it exists
        (kept because the server could not be put back)."""
        if not run.undo_set_id:
            return {}
        try:
            sets.get_set(self.clients(run), run.undo_set_id)
        except errors.SetNotFound:
            return {'undo_set_id': ''}
        except Exception:
            LOG.exception('Could not read the safety set of run %s', run.pk)
        return {}

    def _adopt(self, run, clients, clock):
        """The set the dead worker packaged, once usable; None if it was
        not packaged, or will not become usable (it is then removed with
        the rest of the run)."""
        if not run.set_id:
            return None
        try:
            snapshot_set = run_module.wait_until_usable(
                clients, sets.get_set(clients, run.set_id), clock,
                upload_error=self._upload_error(run, clients))
            run_module.mark_packaged(clients, snapshot_set)
            return snapshot_set
        except errors.SnapshotSetError as e:
            LOG.warning('Set %s of run %s will not be usable: %s',
                        run.set_id, run.pk, e)
            return None

    def _agent(self, run, clients):
        if self.agent_locator is None:
            return None
        try:
            return self.agent_locator.for_server(clients, run.server_id)
        except Exception:
            LOG.exception('Could not locate the agent of %s', run.server_id)
            return None

    def _agent_url(self, run, clients):
        if (run.window or {}).get('agent'):
            return run.window['agent']
        agent = self._agent(run, clients)
        return agent.url if agent is not None else None

    def _upload_error(self, run, clients):
        """What says the agent gave up uploading the run's copies."""
        copies = run.resource_ids(events.AGENT_COPY)
        agent = self._agent(run, clients) if copies else None
        if agent is None:
            return None

        def check():
            try:
                capture = agent.show_capture(run.server_id, copies[-1])
            except agent_module.AgentError:
                return None  # exported and removed, or not known
            if capture['state'] == 'failed':
                return capture.get('error') or 'the upload failed'
            return None
        return check

    def release(self, run):
        """Try again to release the hold an ended run could not: under a
        heartbeat, so no second worker takes the same try over."""
        LOG.info('Run %s: releasing the hold it left (%s)', run.pk,
                 (run.window or {}).get('kind'))
        self._fenced(self._release, run)
        return run

    def _release(self, run, clock, heartbeat=None):
        try:
            try:
                released, text = recovery.close_window(
                    self.clients(run), run.server_id, run.window, clock=clock)
            except ks_exceptions.Unauthorized:
                # The run's permission is gone, the hold is not: the
                # service user (admin) may unpause, and the agent lets it.
                released, text = recovery.close_window(
                    clients_module.Clients(self.service_session()),
                    run.server_id, run.window, clock=clock)
        except errors.Superseded:
            raise
        except Exception as e:
            LOG.exception('Releasing the hold of run %s failed', run.pk)
            released, text = False, str(e)
        if not released and (run.window or {}).get('budget_s') and \
                models.SnapshotRun.objects.filter(
                    pk=run.pk, finished_at__lt=ago(
                        run.window['budget_s'])).exists():
            released, text = True, 'ended by the agent\'s watchdog'
        if not released:
            write(run, heartbeat_at=functions.Now())
            return
        run.window = None
        write(run, window=None, holding_server=None, cleanup='; '.join(
            t for t in (run.cleanup, 'hold released: %s' % text) if t))
        self._end_trust(run)
        run.refresh_from_db()

    def _end(self, run, state, **fields):
        """End the run. A hold it could not release stays recorded (with
        its server and its trust) for ``release`` to retry."""
        pending = bool(run.window)
        fields.update(state=state, finished_at=functions.Now(),
                      heartbeat_at=functions.Now())
        if not pending:
            fields.update(window=None, holding_server=None)
        # What a recovery did before this attempt stays on record.
        fields['cleanup'] = '; '.join(
            text for text in (run.cleanup, fields.get('cleanup')) if text)
        write(run, **fields)
        if not pending:
            self._end_trust(run)
        run.refresh_from_db()
        LOG.info('Run %s %s%s', run.pk, state,
                 ': %s' % run.error if run.error else '')

    def _end_trust(self, run):
        """A run's own trust ends with it (a schedule's lives on): deleted
        once the run is recorded ended, and forgotten once deleted."""
        if run.schedule_id is None and run.trust_id and \
                credentials.delete_trust(run.trust_id,
                                         self.service_session()):
            write(run, trust_id='')


def _removed_text(deleted, failures):
    return 'deleted: %s%s' % (
        ', '.join(deleted) or 'nothing',
        '; could not delete: %s' % ', '.join(failures) if failures else '')


def _requeue(run, cleanup, **reset):
    """Queue a recovered run again for its next attempt, with what the
    recovery did; ``reset`` clears what the dead attempt recorded."""
    write(run, state=models.QUEUED, worker='', claim='', heartbeat_at=None,
          attempts=run.attempts + 1, step='', cleanup=cleanup, resources=[],
          **reset)
    run.refresh_from_db()


def _failed(text, error):
    """The error of a failed run in the user's words, not claiming that
    nothing was kept when the rollback could not remove everything."""
    if getattr(error, 'rollback_failures', None):
        text += (' Some of what it made could not be removed yet (see '
                 'the cleanup); it is removed later, automatically.')
    return text


def _rollback_text(error):
    failures = getattr(error, 'rollback_failures', None)
    if failures:
        return 'could not undo: %s' % '; '.join(failures)
    return ''
