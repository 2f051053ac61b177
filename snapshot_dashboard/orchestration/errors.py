"""Errors of the orchestration, each with a message fit to show a user."""


class SnapshotSetError(Exception):
    """Base class: the message says what went wrong in the user's words."""


class Superseded(Exception):
    """The process no longer owns the run: another took it over (this one
    stopped recording or beating for too long). It stops acting at once
    and undoes nothing: what the run made is the new owner's to keep or
    remove. Only a hold it can name (an agent's lease) is released."""


class ServerNotFound(SnapshotSetError):
    def __init__(self, server_id):
        super().__init__(
            'No server %s in your project.' % server_id)
        self.server_id = server_id


class ServerNotSnapshottable(SnapshotSetError):
    def __init__(self, server_name, status, task_state=None):
        if task_state:
            reason = 'is busy (%s)' % task_state
        else:
            reason = 'is %s' % status
        super().__init__(
            'Server %s %s; a snapshot set can be taken of a server that is '
            'active, shut off, paused or suspended and not busy with another '
            'task.' % (server_name, reason))
        self.status = status
        self.task_state = task_state


class UnknownDevices(SnapshotSetError):
    def __init__(self, unknown, known):
        super().__init__(
            'Unknown device(s) %s; this server has %s.'
            % (', '.join(sorted(unknown)), ', '.join(sorted(known))))
        self.unknown = sorted(unknown)
        self.known = sorted(known)


class NothingSelected(SnapshotSetError):
    def __init__(self):
        super().__init__('No drive is selected for the snapshot set.')


class DeviceNotCapturable(SnapshotSetError):
    def __init__(self, reasons):
        super().__init__(
            'Cannot capture %s.' % '; '.join(
                '%s: %s' % (name, reason)
                for name, reason in sorted(reasons.items())))
        self.reasons = dict(reasons)


class ConsistencyUnavailable(SnapshotSetError):
    """The consistency level asked for cannot be reached for this server."""


class QuotaExceeded(SnapshotSetError):
    def __init__(self, checks):
        super().__init__(
            'Not enough quota: %s.' % '; '.join(
                check.describe() for check in checks))
        self.checks = list(checks)


class CaptureFailed(SnapshotSetError):
    """A drive could not be captured; everything created was rolled back."""


class WindowTimeout(CaptureFailed):
    def __init__(self, budget_s, waiting_for):
        super().__init__(
            'The drives were not all captured within %s s (still waiting '
            'for %s); the guest was released and nothing was kept.'
            % (budget_s, ', '.join(sorted(waiting_for))))
        self.waiting_for = sorted(waiting_for)


class WindowCloseFailed(SnapshotSetError):
    """Thaw or unpause failed: the server may still be frozen or paused."""


class DevicesChanged(SnapshotSetError):
    def __init__(self, detached):
        super().__init__(
            'Volume(s) at %s were detached while the snapshot set was being '
            'taken; nothing was kept.' % ', '.join(sorted(detached)))
        self.detached = sorted(detached)


class SetNotUsable(SnapshotSetError):
    def __init__(self, set_id, status):
        super().__init__('Snapshot set %s is %s; only an available set can '
                         'be restored.' % (set_id, status))
        self.set_id = set_id
        self.status = status


class ServerNotAttachable(SnapshotSetError):
    def __init__(self, server_name, status, task_state=None):
        super().__init__(
            'Server %s is %s; volumes can be attached to a server that is '
            'active or shut off and not busy with another task.'
            % (server_name, 'busy (%s)' % task_state if task_state
               else status))


class RestoreFailed(SnapshotSetError):
    """A restore failed; what it made was removed (``rollback_failures``
    names what could not be, yet)."""

    def __init__(self, message, rollback_failures=()):
        super().__init__(message)
        self.rollback_failures = list(rollback_failures)


class ServerNotRestorable(SnapshotSetError):
    def __init__(self, server_name, status, task_state=None):
        super().__init__(
            'Server %s is %s; a server is restored in place when it is '
            'active or shut off and not busy with another task.'
            % (server_name, 'busy (%s)' % task_state if task_state
               else status))


class CannotRestoreInPlace(SnapshotSetError):
    """Nothing was changed: ``reasons`` maps a drive to why it cannot be
    restored in place, and what to do instead."""

    def __init__(self, reasons):
        super().__init__('Cannot restore in place: %s.' % '; '.join(
            '%s: %s' % (name, why) for name, why in sorted(reasons.items())))
        self.reasons = dict(reasons)


class SetNotFound(SnapshotSetError):
    def __init__(self, set_id):
        super().__init__('No snapshot set %s in your project.' % set_id)
        self.set_id = set_id


class SetDeleteFailed(SnapshotSetError):
    def __init__(self, set_id, failures):
        super().__init__(
            'Snapshot set %s was not deleted completely: %s.'
            % (set_id, '; '.join(failures)))
        self.failures = list(failures)
