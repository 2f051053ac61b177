"""Leases: a freeze or a pause that ends by itself.

Whoever freezes or pauses a guest gets a lease with a budget. The caller
releases it (thaw, resume); if the caller vanishes, the watchdog releases it
when the budget runs out, and says so on the lease, so the orchestration
can tell the set was not held for its whole capture.
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

# Released leases are kept this long, for the caller to read what happened.
KEEP_RELEASED_S = 3600


class LeaseConflict(Exception):
    status = 409


class LeaseNotFound(Exception):
    status = 404


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
    """At most one lease per server; a watchdog thread ends expired ones."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._active = {}  # server -> (lease, release callable)
        self._reserved = set()
        self._released = {}  # id -> lease
        self._lock = threading.Condition()
        self._stopping = False
        self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                          name='lease-watchdog')
        self._watchdog.start()

    def take(self, server, kind, budget_s, hold, release):
        """Hold the guest (``hold()``) under a new lease.

        ``release()`` is what ends the hold; it runs once, by the caller,
        the watchdog or shutdown. A second lease on the same server is a
        LeaseConflict and does not touch the guest.
        """
        with self._lock:
            if self._stopping:
                # No watchdog would end it: the agent is on its way out.
                raise LeaseConflict('The agent is stopping; try again.')
            if server in self._active or server in self._reserved:
                raise LeaseConflict(
                    'Server %s is already held by another %s lease.'
                    % (server, self._kind_of(server)))
            self._reserved.add(server)
        # The budget counts from before the hold: however long the freeze
        # or pause itself takes, the guest is released at its end.
        taken_at = self.clock()
        try:
            hold()
            lease = Lease(id=str(uuid.uuid4()), server=server, kind=kind,
                          budget_s=budget_s, taken_at=taken_at)
        finally:
            with self._lock:
                self._reserved.discard(server)
        with self._lock:
            stopping = self._stopping
            if not stopping:
                self._active[server] = (lease, release)
                self._lock.notify_all()
        if stopping:
            # The agent began stopping during the hold: released at once,
            # as stop() released every other.
            self._end((lease, release), SHUTDOWN)
            raise LeaseConflict('The agent is stopping; try again.')
        LOG.info('%s of server %s under lease %s for %s s', kind, server,
                 lease.id, budget_s)
        return lease

    def _kind_of(self, server):
        entry = self._active.get(server)
        return entry[0].kind if entry else 'pending'

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
            del self._active[entry[0].server]
        return self._end(entry, by)

    def _end(self, entry, by):
        lease, release = entry
        try:
            release()
        except Exception as e:
            LOG.exception('Releasing lease %s of server %s failed',
                          lease.id, lease.server)
            lease.release_error = str(e)
        lease.released_by = by
        lease.released_at = self.clock()
        if by != CALLER:
            LOG.warning('%s released the %s of server %s (lease %s) after '
                        '%.1f s', by, lease.kind, lease.server, lease.id,
                        lease.released_at - lease.taken_at)
        with self._lock:
            self._released[lease.id] = lease
            for old_id, old in list(self._released.items()):
                if lease.released_at - old.released_at > KEEP_RELEASED_S:
                    del self._released[old_id]
        return lease

    def active(self, server):
        with self._lock:
            entry = self._active.get(server)
            return entry[0] if entry else None

    def _watch(self):
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = self.clock()
                expired = [e for e in self._active.values()
                           if e[0].expires_at <= now]
                for lease, _ in expired:
                    del self._active[lease.server]
                if not expired:
                    nearest = min((e[0].expires_at for e in
                                   self._active.values()), default=now + 1)
                    self._lock.wait(timeout=max(0.01, nearest - now))
                    continue
            for entry in expired:
                self._end(entry, WATCHDOG)

    def release_all(self, by=SHUTDOWN):
        with self._lock:
            entries = list(self._active.values())
            self._active.clear()
        return [self._end(entry, by) for entry in entries]

    def stop(self):
        """Take no new lease, release every lease, stop the watchdog."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        released = self.release_all()
        self._watchdog.join(timeout=5)
        return released
