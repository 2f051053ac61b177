"""Leases: a freeze or a pause that ends by itself.

Whoever freezes or pauses a guest gets a lease with a budget. The caller
releases it (thaw, resume); if the caller vanishes, the watchdog releases it
when the budget runs out, and says so on the lease, so the orchestration
can tell the set was not held for its whole capture.

Each lease is written to the lease file before the guest is held and
removed once the guest is released: an agent that dies holding a guest
releases it when it starts again. A release that fails is tried again in
the background, the lease still recorded and the server still held (no new
lease on it), until it succeeds or ``retry_s`` passes.
"""

import dataclasses
import logging
import threading
import time
import uuid

LOG = logging.getLogger(__name__)

FREEZE = 'freeze'
PAUSE = 'pause'

CALLER = 'caller'
WATCHDOG = 'watchdog'
SHUTDOWN = 'shutdown'
RESTART = 'restart'

# Released leases are kept this long, for the caller to read what happened.
KEEP_RELEASED_S = 3600
# A failed release is tried again after this, then twice as long each time
# up to RETRY_MAX_S.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


class LeaseConflict(Exception):
    status = 409


class LeaseNotFound(Exception):
    status = 404


class LeaseNotRecorded(Exception):
    """The lease file could not be written: the guest was not touched."""

    status = 503


@dataclasses.dataclass
class Lease:
    id: str
    server: str
    kind: str
    budget_s: float
    taken_at: float
    released_by: str | None = None
    released_at: float | None = None
    release_error: str | None = None

    @property
    def expires_at(self):
        return self.taken_at + self.budget_s

    def to_dict(self, now):
        held_until = self.released_at if self.released_at else now
        return {'id': self.id, 'server': self.server, 'kind': self.kind,
                'budget_s': self.budget_s,
                'held_ms': int(round((held_until - self.taken_at) * 1000)),
                'released_by': self.released_by,
                'release_error': self.release_error}


class Leases:
    """At most one lease per server; a watchdog thread ends expired ones.

    ``lease_file`` (a state.LeaseFile) records each lease from before its
    hold until its release; without one, leases live in memory only.
    """

    def __init__(self, clock=time.monotonic, lease_file=None, retry_s=600,
                 wall_clock=time.time):
        self.clock = clock
        self.lease_file = lease_file
        self.retry_s = retry_s
        self.wall_clock = wall_clock
        self._active = {}  # server -> (lease, release)
        # server -> (lease, release): ended, but the guest not yet released
        self._releasing = {}
        self._reserved = set()
        self._released = {}  # id -> lease
        self._lock = threading.Condition()
        self._stopping = False
        self._closing = threading.Event()  # ends the retries
        self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                          name='lease-watchdog')
        self._watchdog.start()

    def take(self, server, kind, budget_s, hold, release):
        """Hold the guest (``hold()``) under a new lease.

        ``release()`` is what ends the hold; it runs by the caller, the
        watchdog or shutdown, and again until it succeeds. A second lease on
        the same server is a LeaseConflict and does not touch the guest.
        """
        with self._lock:
            if self._stopping:
                # No watchdog would end it: the agent is on its way out.
                raise LeaseConflict('The agent is stopping; try again.')
            self._check_free(server)
            self._reserved.add(server)
        lease_id = str(uuid.uuid4())
        try:
            self._record(lease_id, server, kind, budget_s)
        except OSError as e:
            with self._lock:
                self._reserved.discard(server)
            LOG.exception('Could not record a lease of server %s', server)
            raise LeaseNotRecorded(
                'The agent could not record the lease, so server %s was not '
                'touched: %s' % (server, e)) from e
        # The budget counts from before the hold: however long the freeze
        # or pause itself takes, the guest is released at its end.
        taken_at = self.clock()
        try:
            hold()
        except BaseException:
            # The hold leaves the guest released when it fails.
            with self._lock:
                self._reserved.discard(server)
            self._forget(lease_id)
            raise
        lease = Lease(id=lease_id, server=server, kind=kind,
                      budget_s=budget_s, taken_at=taken_at)
        entry = (lease, release)
        with self._lock:
            self._reserved.discard(server)
            stopping = self._stopping
            if stopping:
                self._detach(entry, SHUTDOWN)
            else:
                self._active[server] = entry
                self._lock.notify_all()
        if stopping:
            # The agent began stopping during the hold: released at once,
            # as stop() released every other.
            self._end(entry)
            raise LeaseConflict('The agent is stopping; try again.')
        LOG.info('%s of server %s under lease %s for %s s', kind, server,
                 lease.id, budget_s)
        return lease

    def _check_free(self, server):
        if server in self._reserved:
            raise LeaseConflict('Server %s is already held by another lease '
                                'being taken.' % server)
        if server in self._active:
            raise LeaseConflict(
                'Server %s is already held by another %s lease.'
                % (server, self._active[server][0].kind))
        if server in self._releasing:
            lease = self._releasing[server][0]
            raise LeaseConflict(
                'Server %s is already held: its %s lease %s is being '
                'released%s.' % (server, lease.kind, lease.id,
                                 ' (%s)' % lease.release_error
                                 if lease.release_error else ''))

    def _record(self, lease_id, server, kind, budget_s):
        if self.lease_file is None:
            return
        now = self.wall_clock()
        self.lease_file.add({'id': lease_id, 'server': server, 'kind': kind,
                             'budget_s': budget_s, 'taken_at': now,
                             'expires_at': now + budget_s})

    def _forget(self, lease_id):
        if self.lease_file is None:
            return
        try:
            self.lease_file.remove(lease_id)
        except OSError:
            # Left in the file: the next start releases a guest already
            # released, which is harmless.
            LOG.exception('Could not remove lease %s from %s', lease_id,
                          self.lease_file.path)

    def find(self, lease_id):
        with self._lock:
            for lease, _ in self._active.values():
                if lease.id == lease_id:
                    return lease
            if lease_id in self._released:
                return self._released[lease_id]
        raise LeaseNotFound('No lease %s.' % lease_id)

    def release(self, lease_id, by=CALLER):
        """End a lease; returns it. A lease already ended is returned as it
        is, so a caller learns whether the watchdog ended it first."""
        with self._lock:
            entry = next((e for e in self._active.values()
                          if e[0].id == lease_id), None)
            if entry is None:
                if lease_id in self._released:
                    return self._released[lease_id]
                raise LeaseNotFound('No lease %s.' % lease_id)
            self._detach(entry, by)
        return self._end(entry)

    def _detach(self, entry, by):
        """With the lock held: the lease ends now; its server stays held
        until the guest is released."""
        lease = entry[0]
        self._active.pop(lease.server, None)
        lease.released_by = by
        self._releasing[lease.server] = entry
        now = self.clock()
        self._released[lease.id] = lease
        for old_id, old in list(self._released.items()):
            if (old.released_at is not None
                    and now - old.released_at > KEEP_RELEASED_S):
                del self._released[old_id]

    def _end(self, entry):
        """Release the guest of a detached lease; a release that fails is
        retried in the background. Returns the lease."""
        lease = entry[0]
        if self._release(entry):
            if lease.released_by != CALLER:
                LOG.warning('%s released the %s of server %s (lease %s) '
                            'after %.1f s', lease.released_by, lease.kind,
                            lease.server, lease.id,
                            lease.released_at - lease.taken_at)
        else:
            threading.Thread(target=self._retry, args=(entry,), daemon=True,
                             name='release-%s' % lease.server).start()
        return lease

    def _release(self, entry):
        """One try; True once the guest is released and the lease gone."""
        lease, release = entry
        try:
            release()
        except Exception as e:
            LOG.exception('Releasing the %s of server %s (lease %s) failed',
                          lease.kind, lease.server, lease.id)
            lease.release_error = str(e) or type(e).__name__
            return False
        lease.release_error = None
        lease.released_at = self.clock()
        self._forget(lease.id)
        with self._lock:
            if self._releasing.get(lease.server, (None,))[0] is lease:
                del self._releasing[lease.server]
        return True

    def _retry(self, entry):
        lease = entry[0]
        deadline = self.clock() + self.retry_s
        delay = RETRY_FIRST_S
        while not self._closing.wait(delay):
            if self._release(entry):
                LOG.warning('Released the %s of server %s (lease %s) on a '
                            'later try, %.1f s after it was taken',
                            lease.kind, lease.server, lease.id,
                            lease.released_at - lease.taken_at)
                return
            if self.clock() >= deadline:
                LOG.error('Gave up releasing the %s of server %s (lease %s) '
                          'after %s s: %s. The next start of the agent tries '
                          'again.', lease.kind, lease.server, lease.id,
                          self.retry_s, lease.release_error)
                break
            delay = min(delay * 2, RETRY_MAX_S)
        with self._lock:
            if self._releasing.get(lease.server, (None,))[0] is lease:
                del self._releasing[lease.server]

    def active(self, server):
        """The lease the server is held under, None once it has ended."""
        with self._lock:
            entry = self._active.get(server)
            return entry[0] if entry else None

    def holding(self, server):
        """The lease holding the server: active, or ended with the guest
        not yet released."""
        with self._lock:
            entry = self._active.get(server) or self._releasing.get(server)
            return entry[0] if entry else None

    def release_inherited(self, release_for):
        """At start: release each lease an earlier agent left in the lease
        file, ``release_for(kind, server)`` making its release. Returns
        them."""
        if self.lease_file is None:
            return []
        ended = []
        for record in self.lease_file.inherited:
            held_s = max(0.0, self.wall_clock() - record['taken_at'])
            lease = Lease(id=record['id'], server=record['server'],
                          kind=record['kind'], budget_s=record['budget_s'],
                          taken_at=self.clock() - held_s)
            LOG.warning('An earlier agent left the %s of server %s (lease %s,'
                        ' taken %.1f s ago with a budget of %s s); releasing '
                        'it', lease.kind, lease.server, lease.id, held_s,
                        lease.budget_s)
            entry = (lease, release_for(lease.kind, lease.server))
            with self._lock:
                self._detach(entry, RESTART)
            ended.append(self._end(entry))
        return ended

    def _watch(self):
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = self.clock()
                expired = [e for e in self._active.values()
                           if e[0].expires_at <= now]
                for entry in expired:
                    self._detach(entry, WATCHDOG)
                if not expired:
                    nearest = min((e[0].expires_at for e in
                                   self._active.values()), default=now + 1)
                    self._lock.wait(timeout=max(0.01, nearest - now))
                    continue
            for entry in expired:
                # One thread each: a guest agent slow to thaw delays no
                # other guest's release.
                threading.Thread(target=self._end, args=(entry,),
                                 daemon=True,
                                 name='release-%s' % entry[0].server).start()

    def release_all(self, by=SHUTDOWN):
        """Release every active lease at once; returns them."""
        with self._lock:
            entries = list(self._active.values())
            for entry in entries:
                self._detach(entry, by)
        threads = [threading.Thread(target=self._end, args=(entry,),
                                    name='release-%s' % entry[0].server)
                   for entry in entries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [entry[0] for entry in entries]

    def stop(self):
        """Take no new lease, release every lease, stop the watchdog and the
        retries (a release still failing stays in the lease file)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        released = self.release_all()
        with self._lock:
            pending = [entry[0] for entry in self._releasing.values()]
        self._closing.set()
        for lease in pending:
            LOG.error('The %s of server %s (lease %s) is still not released '
                      '(%s); the next start of the agent releases it.',
                      lease.kind, lease.server, lease.id,
                      lease.release_error)
        self._watchdog.join(timeout=5)
        return released
