"""What the agent keeps on disk in ``state_dir``: its leases, and the lock
that makes it the only agent working from that directory.

A lease is written (and fsynced) before the guest is held and removed once
the guest is released, so an agent that dies holding a guest leaves what
the next agent needs to release it.
"""

import fcntl
import json
import logging
import os
import threading
import time

LOG = logging.getLogger(__name__)

LEASES_FILE = 'leases.json'
LOCK_FILE = 'agent.lock'
KINDS = frozenset({'freeze', 'pause'})


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HostLock:
    """An exclusive flock on ``state_dir/agent.lock``, held for the life of
    the process (the kernel drops it when the process dies, however)."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, LOCK_FILE)
        self.holder = None
        self._fd = None

    def acquire(self):
        """True once held; False when another process holds it (``holder``
        is then the pid it wrote)."""
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.holder = os.read(fd, 32).decode(errors='replace').strip()
            os.close(fd)
            return False
        # The pid is for the operator only; the flock is the lock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, b'%d\n' % os.getpid(), 0)
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _valid(record):
    return (isinstance(record, dict) and record.get('kind') in KINDS
            and all(isinstance(record.get(key), str)
                    for key in ('id', 'server'))
            and all(isinstance(record.get(key), (int, float))
                    for key in ('budget_s', 'taken_at', 'expires_at')))


class LeaseFile:
    """The leases of this agent as ``state_dir/leases.json``.

    Every change rewrites the whole file the crash-safe way: a temporary
    file, fsync, rename over the old one, fsync of the directory. The file
    is read once, when this is made: what it holds then was left by an
    earlier agent (``inherited``).
    """

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, LEASES_FILE)
        self._lock = threading.Lock()
        self._records = {record['id']: record for record in self._read()}
        self.inherited = list(self._records.values())

    def _read(self):
        try:
            with open(self.path) as f:
                content = json.load(f)
        except FileNotFoundError:
            return []
        except ValueError as e:
            # Written by rename only, so this is damage from outside: keep
            # it for the operator and start afresh.
            aside = '%s.unreadable-%d' % (self.path, time.time())
            LOG.error('Lease file %s is unreadable (%s); moved to %s. A guest '
                      'it named may still be frozen or paused.', self.path, e,
                      aside)
            os.replace(self.path, aside)
            return []
        records = content.get('leases') if isinstance(content, dict) else None
        if not isinstance(records, list):
            LOG.error('Lease file %s holds no list of leases; ignored',
                      self.path)
            return []
        for record in records:
            if not _valid(record):
                LOG.error('Lease file %s: ignoring %r', self.path, record)
        return [record for record in records if _valid(record)]

    def add(self, record):
        with self._lock:
            self._records[record['id']] = record
            self._write()

    def remove(self, lease_id):
        with self._lock:
            if self._records.pop(lease_id, None) is not None:
                self._write()

    def records(self):
        with self._lock:
            return [dict(record) for record in self._records.values()]

    def _write(self):
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        temporary = self.path + '.tmp'
        with open(temporary, 'w') as f:
            json.dump({'leases': list(self._records.values())}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)
        _fsync_dir(self.state_dir)
