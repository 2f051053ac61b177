"""Capturing drives: one capturer per kind of storage, behind one interface.

A capturer says which drives it can take (``cannot_capture``), initiates a
capture inside the window (``begin`` for one drive, or ``begin_all`` for
drives it takes in one instant; both register the undo of what they
create), reports when a drive's point in time is reached (``reached``), and
after the window writes what the set's images need (``package``).
"""

import dataclasses
import logging
import os
import uuid

from cinderclient import exceptions as cinder_exceptions
from glanceclient import exc as glance_exceptions

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import package as packaging
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
    captured_by: str | None = None
    disk_format: str | None = None


class Capturer:
    name = None

    def package(self, captures, snapshot_set, plan, properties, rollback):
        """After the window: write what the set's images need. Returns True
        if it wrote the set's own image (with ``properties``)."""
        return False


class VolumeSnapshotCapturer(Capturer):
    """Cinder volumes: a forced snapshot; the instant is reached when the
    snapshot leaves ``creating`` (Nova thaws at the same point)."""

    name = 'cinder'

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
        return Capture(device=device, snapshot_id=snapshot.id,
                       captured_by=self.name)

    def reached(self, capture):
        snapshot = self.cinder.volume_snapshots.get(capture.snapshot_id)
        if snapshot.status == 'creating':
            return False
        if snapshot.status != 'available':
            raise errors.CaptureFailed(
                'Cinder could not snapshot the volume at %s (snapshot %s is '
                '%s).' % (capture.device.name, snapshot.id, snapshot.status))
        return True


class NovaImageCapturer(Capturer):
    """An image-backed root disk through Nova's createImage, where the
    compute-side agent cannot copy it.

    The root's point in time is when Nova has copied the disk and starts
    uploading (task state ``image_uploading``). Nova copies only the root
    disk, so an ephemeral disk needs the compute-side agent.
    """

    name = 'nova'

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
        return Capture(device=device, image_id=image_id,
                       captured_by=self.name)

    def package(self, captures, snapshot_set, plan, properties, rollback):
        if not any(c.image_id == snapshot_set.id for c in captures):
            return False
        self.glance.images.update(snapshot_set.id, **properties)
        return True

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


def _dev(name):
    return os.path.basename(name)


class AgentDiskCapturer(Capturer):
    """Local drives (image-backed root, ephemeral) copied on the compute
    node by the agent: all in one instant (one libvirt backup job), in
    milliseconds inside the window; uploaded to Glance after it.

    ``drives`` is what the agent reported of the server's local drives.
    """

    name = 'agent'
    LOCAL_KINDS = (planning.ROOT_IMAGE, planning.EPHEMERAL)

    def __init__(self, clients, context, agent, drives):
        self.glance = clients.glance
        self.context = context
        self.agent = agent
        self.drives = {d['device']: d for d in drives}
        self.capture_id = None

    def cannot_capture(self, device):
        if device.kind not in self.LOCAL_KINDS:
            return 'not a local disk'
        drive = self.drives.get(_dev(device.name))
        if drive is None:
            return ('the compute-side agent finds no local drive %s'
                    % _dev(device.name))
        if not drive.get('capturable'):
            return ('the compute-side agent cannot copy it: %s'
                    % (drive.get('reason') or 'unknown reason'))
        return None

    def begin_all(self, devices, rollback):
        server_id = self.context.server_id
        try:
            taken = self.agent.capture(server_id,
                                       [_dev(d.name) for d in devices],
                                       self.context.lease_id)
        except agent_module.AgentError as e:
            raise errors.CaptureFailed(
                'The compute-side agent could not copy %s: %s'
                % (', '.join(d.name for d in devices), e)) from e
        self.capture_id = taken['id']
        rollback.add('remove capture %s' % taken['id'],
                     self.agent.delete_capture, server_id, taken['id'])
        formats = {d['device']: d['format'] for d in taken['drives']}
        return [Capture(device=d, image_id=str(uuid.uuid4()),
                        captured_by=self.name,
                        disk_format=formats[_dev(d.name)]) for d in devices]

    def reached(self, capture):
        # The backup job fixed the instant before begin_all returned.
        return True

    def package(self, captures, snapshot_set, plan, properties, rollback):
        """Create one image per copy, the root's being the set's image with
        the base image's properties (as Nova's snapshot inherits them), and
        have the agent upload into them: the set's image last, so it turns
        active only when every copy is in."""
        wrote_set = False
        uploads = []
        for c in sorted(captures, key=lambda c: c.image_id == snapshot_set.id):
            if c.image_id == snapshot_set.id:
                meta = dict(self._base_properties(plan), **properties)
                meta['base_image_ref'] = plan.image_id or ''
                wrote_set = True
            else:
                meta = {'image_type': 'snapshot', RUN_KEY: snapshot_set.run_id,
                        MEMBER_OF: snapshot_set.id,
                        'instance_uuid': plan.server_id}
            self.glance.images.create(
                id=c.image_id, disk_format=c.disk_format,
                name='%s %s' % (snapshot_set.name, c.device.name)
                if c.image_id != snapshot_set.id else snapshot_set.name,
                container_format='bare', visibility='private',
                min_disk=c.device.size_gb, **meta)
            rollback.add('delete image %s' % c.image_id,
                         delete_image, self.glance, c.image_id)
            uploads.append((_dev(c.device.name), c.image_id))
        try:
            self.agent.export_capture(self.context.server_id, self.capture_id,
                                      uploads)
        except agent_module.AgentError as e:
            raise errors.CaptureFailed(
                'The compute-side agent could not upload the copies: %s'
                % e) from e
        return wrote_set

    def upload_error(self):
        """Why the agent's upload failed, or None while it goes well."""
        capture = self.agent.show_capture(self.context.server_id,
                                          self.capture_id)
        if capture['state'] == 'failed':
            return capture.get('error') or 'the upload failed'
        return None

    def _base_properties(self, plan):
        if not plan.image_id:
            return {}
        try:
            base = self.glance.images.get(plan.image_id)
        except glance_exceptions.HTTPNotFound:
            LOG.warning('Base image %s of %s is gone: the set does not '
                        'inherit its properties', plan.image_id,
                        plan.server_id)
            return {}
        return packaging.inherited_properties(
            {k: v for k, v in base.items() if k not in GLANCE_CORE})


# Glance's own fields of an image, not properties to inherit.
GLANCE_CORE = frozenset({
    'id', 'name', 'status', 'visibility', 'protected', 'owner', 'tags',
    'created_at', 'updated_at', 'file', 'schema', 'self', 'direct_url',
    'locations', 'virtual_size', 'os_hidden', 'stores', 'instance_uuid',
    'image_type', 'base_image_ref', 'owner_specified.openstack.md5',
    'owner_specified.openstack.sha256', 'owner_specified.openstack.object',
})
# On an image a set holds besides its own: the set's id.
MEMBER_OF = 'snapshot_set_member_of'


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


def capturers(clients, context, agent=None, agent_status=None):
    """The capturers available, in order of preference: the agent's copy
    of local drives where its report says it can, else Nova's createImage.
    """
    available = [VolumeSnapshotCapturer(clients, context)]
    if agent is not None and agent_status is not None:
        available.append(AgentDiskCapturer(
            clients, context, agent, agent_status.get('local_drives') or []))
    available.append(NovaImageCapturer(clients, context))
    return available


def capturer_for(available, device):
    """The first capturer that can take ``device``, and why none can."""
    reasons = []
    for capturer in available:
        reason = capturer.cannot_capture(device)
        if reason is None:
            return capturer, None
        reasons.append(reason)
    return None, reasons[-1] if reasons else 'no capturer'
