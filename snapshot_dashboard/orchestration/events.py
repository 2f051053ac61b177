"""A run's progress, as the orchestration reports it to its caller.

Events are typed: the drives planned are a list, the window opened is its
record (a dict another process can close it from), every resource created
is a ``Resource`` with a kind and an id. A recorder stores the fields and
recovery reads them; nothing is parsed back out of text. ``Event.detail``
is the event in words, for people only.
"""

import dataclasses

# Steps, in the order a run meets them.
PLAN = 'plan'
PREFLIGHT = 'preflight'
OPEN_WINDOW = 'open-window'
CAPTURE = 'capture'
CLOSE_WINDOW = 'close-window'
PACKAGE = 'package'
UPLOAD = 'upload'
# A restore's steps: a drive made again (as a new volume), then attached.
RESTORE = 'restore'
ATTACH = 'attach'
# A restore in place's own: its safety set taken, the server stopped, the
# replaced volumes detached, the root rebuilt, a local drive written back,
# the server started again.
SAFETY_SET = 'safety-set'
STOP = 'stop'
DETACH = 'detach'
REBUILD = 'rebuild'
WRITE = 'write'
START = 'start'
ROLLBACK = 'rollback'
# Not a step: something was created (and its undo registered).
RESOURCE = 'resource'
STEPS = (PLAN, PREFLIGHT, OPEN_WINDOW, CAPTURE, CLOSE_WINDOW, PACKAGE,
         UPLOAD, RESTORE, ATTACH, SAFETY_SET, STOP, DETACH, REBUILD, WRITE,
         START, ROLLBACK)

# States of a step.
STARTED = 'started'
DONE = 'done'
FAILED = 'failed'

# Kinds of resource a run creates.
VOLUME_SNAPSHOT = 'volume-snapshot'
IMAGE = 'image'
AGENT_COPY = 'agent-copy'  # local drives copied on the compute node
VOLUME = 'volume'  # a drive of a set restored as a new volume
ATTACHMENT = 'attachment'  # a restored volume attached (id: the volume's)
# What a restore in place changes, and undoes: its safety set (id: the
# set's), the server stopped, a replaced volume detached (id: the volume's),
# the server rebuilt, a local drive written back (id: the device).
SAFETY_SET_KIND = 'safety-set'
STOPPED = 'stopped'
DETACHMENT = 'detachment'
REBUILT = 'rebuilt'
WRITTEN = 'written'
RESOURCE_WORDS = {VOLUME_SNAPSHOT: 'volume snapshot', IMAGE: 'image',
                  AGENT_COPY: 'agent copy', VOLUME: 'volume',
                  ATTACHMENT: 'attachment of volume',
                  SAFETY_SET_KIND: 'safety set', STOPPED: 'stop of server',
                  DETACHMENT: 'detachment of volume',
                  REBUILT: 'rebuild of server', WRITTEN: 'write-back of'}


@dataclasses.dataclass(frozen=True)
class Resource:
    """Something a run created, which its rollback or a recovery removes."""

    kind: str
    id: str

    def __post_init__(self):
        if self.kind not in RESOURCE_WORDS:
            raise ValueError('Unknown kind of resource %r' % self.kind)

    def __str__(self):
        return '%s %s' % (RESOURCE_WORDS[self.kind], self.id)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(kind=data['kind'], id=data['id'])


@dataclasses.dataclass(frozen=True)
class Event:
    """One step's state, as handed to the progress callback.

    Which fields a step carries: ``drives`` with PLAN done, ``window``
    (``Window.record()``) with OPEN_WINDOW done, ``window_ms`` with
    CLOSE_WINDOW done, ``set_id`` with PACKAGE done, ``device`` with
    CAPTURE, ``resource`` with RESOURCE; ``message`` says in words what is
    held, what failed, or what could not be undone.
    """

    step: str
    state: str
    device: str | None = None
    drives: tuple | None = None
    window: dict | None = None
    window_ms: int | None = None
    set_id: str | None = None
    resource: Resource | None = None
    message: str | None = None

    @property
    def detail(self):
        """The event's data in words, for logs and the run's page."""
        if self.message:
            return self.message
        if self.drives is not None:
            return ', '.join(self.drives)
        if self.resource is not None:
            return str(self.resource)
        if self.window_ms is not None:
            return '%d ms' % self.window_ms
        if self.set_id is not None:
            return self.set_id
        if self.window is not None:
            return self.window.get('kind')
        return None

    def to_dict(self):
        """The event as JSON-able fields, the ones not set left out."""
        data = {'step': self.step, 'state': self.state}
        for field in dataclasses.fields(self)[2:]:
            value = getattr(self, field.name)
            if value is not None:
                data[field.name] = value
        if self.drives is not None:
            data['drives'] = list(self.drives)
        if self.resource is not None:
            data['resource'] = self.resource.to_dict()
        detail = self.detail
        if detail:
            data['detail'] = detail
        return data
