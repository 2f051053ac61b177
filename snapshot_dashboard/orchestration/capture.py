"""Capturing drives: one capturer per kind of storage, behind one interface.

A capturer says which drives it can take (``cannot_capture``), initiates a
capture inside the window (``begin``, which registers the undo of what it
creates) and reports when the drive's point in time is reached (``reached``).
The compute-side agent adds a capturer for local drives; the orchestration
does not change.
"""

import dataclasses
import logging

from cinderclient import exceptions as cinder_exceptions
from glanceclient import exc as glance_exceptions

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import plan as planning

LOG = logging.getLogger(__name__)

# Metadata on every volume snapshot and image a run creates: a crashed run's
# leftovers can be found, and a set deletes only what it made.
RUN_KEY = 'snapshot_set_run'


@dataclasses.dataclass
class Capture:
    """A drive whose capture was initiated."""

    device: planning.Device
    snapshot_id: str | None = None
    image_id: str | None = None
    reached_at: float | None = None  # clock time the instant was reached


class VolumeSnapshotCapturer:
    """Cinder volumes: a forced snapshot; the instant is reached when the
    snapshot leaves ``creating`` (Nova thaws at the same point)."""

    def __init__(self, clients, context):
        self.cinder = clients.cinder
        self.context = context

    def cannot_capture(self, device):
        return None if device.is_volume else 'not a Cinder volume'

    def begin(self, device, rollback):
        context = self.context
        snapshot = self.cinder.volume_snapshots.create(
            device.volume_id, force=True,
            name='%s %s' % (context.set_name, device.name),
            description=context.description,
            metadata={RUN_KEY: context.run_id,
                      'snapshot_set_device': device.name,
                      'snapshot_set_server': context.server_id})
        rollback.add('delete volume snapshot %s' % snapshot.id,
                     delete_volume_snapshot, self.cinder, snapshot.id,
                     context.clock)
        return Capture(device=device, snapshot_id=snapshot.id)

    def reached(self, capture):
        snapshot = self.cinder.volume_snapshots.get(capture.snapshot_id)
        if snapshot.status == 'creating':
            return False
        if snapshot.status != 'available':
            raise errors.CaptureFailed(
                'Cinder could not snapshot the volume at %s (snapshot %s is '
                '%s).' % (capture.device.name, snapshot.id, snapshot.status))
        return True


class NovaImageCapturer:
    """An image-backed root disk through Nova's createImage.

    The root's point in time is when Nova has copied the disk and starts
    uploading (task state ``image_uploading``). Nova copies only the root
    disk, so an ephemeral disk needs the compute-side agent.
    """

    DONE_COPYING = frozenset({'image_uploading', None})

    def __init__(self, clients, context):
        self.nova = clients.nova
        self.glance = clients.glance
        self.context = context

    def cannot_capture(self, device):
        if device.kind == planning.ROOT_IMAGE:
            return None
        if device.kind == planning.EPHEMERAL:
            return ('an ephemeral disk can only be captured by the '
                    'compute-side agent, which is not configured')
        return 'not a local disk'

    def begin(self, device, rollback):
        image_id = self.nova.servers.create_image(
            self.context.server_id, self.context.set_name,
            metadata={RUN_KEY: self.context.run_id})
        image_id = str(image_id)
        rollback.add('delete image %s' % image_id,
                     delete_image, self.glance, image_id)
        return Capture(device=device, image_id=image_id)

    def reached(self, capture):
        server = self.nova.servers.get(self.context.server_id).to_dict()
        if server.get('OS-EXT-STS:task_state') not in self.DONE_COPYING:
            return False
        try:
            image = self.glance.images.get(capture.image_id)
        except glance_exceptions.HTTPNotFound:
            image = {'status': 'deleted'}
        if image['status'] in ('killed', 'deleted', 'deactivated'):
            raise errors.CaptureFailed(
                'Nova could not snapshot the root disk of server %s.'
                % server['id'])
        return True


def delete_volume_snapshot(cinder, snapshot_id, clock, settle_s=300):
    """Delete a snapshot once Cinder lets us: not while it is ``creating``."""
    deadline = clock.now() + settle_s
    while True:
        try:
            status = cinder.volume_snapshots.get(snapshot_id).status
        except cinder_exceptions.NotFound:
            return
        if status == 'deleting':
            return
        if status != 'creating' or clock.now() >= deadline:
            break
        clock.sleep(0.5)
    try:
        cinder.volume_snapshots.delete(snapshot_id)
    except cinder_exceptions.NotFound:
        pass


def delete_image(glance, image_id):
    try:
        glance.images.delete(image_id)
    except glance_exceptions.HTTPNotFound:
        pass


def capturers(clients, context):
    """The capturers available, in order of preference."""
    return [VolumeSnapshotCapturer(clients, context),
            NovaImageCapturer(clients, context)]


def capturer_for(available, device):
    """The first capturer that can take ``device``, and why none can."""
    reasons = []
    for capturer in available:
        reason = capturer.cannot_capture(device)
        if reason is None:
            return capturer, None
        reasons.append(reason)
    return None, reasons[-1] if reasons else 'no capturer'
