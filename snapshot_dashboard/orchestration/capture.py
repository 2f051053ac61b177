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
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import package as package_module
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class RunContext:
    """What the capturers need to name and tag what they create."""

    run_id: str
    server_id: str
    clock: object = window_module.Clock
    set_name: str = ''
    description: str = ''
    lease_id: str | None = None  # the agent's lease, while the window holds


@dataclasses.dataclass
class Capture:
    """A drive whose capture was initiated."""

    device: plan_module.Device
    snapshot_id: str | None = None
    image_id: str | None = None
    reached_at: float | None = None  # clock time the instant was reached
    captured_by: str | None = None
    disk_format: str | None = None


class Capturer:
    name = None

    def reached_all(self, captures):
        """The ``captures`` whose instant is reached now. A capturer whose
        service answers for many at once overrides this, so a poll round
        costs the same number of requests at any number of drives."""
        return [c for c in captures if self.reached(c)]

    def package(self, captures, snapshot_set, plan, set_properties,
                rollback):
        """After the window: write what the set's images need. Returns True
        if it wrote the set's own image (with ``set_properties``)."""
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
        made = {}
        rollback.add(events.Resource(events.VOLUME_SNAPSHOT,
                                     'of %s' % device.name),
                     self._undo, device, made)
        snapshot = self.cinder.volume_snapshots.create(
            device.volume_id, force=True,
            name='%s %s' % (context.set_name, device.name),
            description=context.description,
            metadata={properties.RUN: context.run_id,
                      properties.DEVICE: device.name,
                      properties.SERVER: context.server_id})
        made['id'] = snapshot.id
        rollback.created(events.Resource(events.VOLUME_SNAPSHOT, snapshot.id))
        return Capture(device=device, snapshot_id=snapshot.id,
                       captured_by=self.name)

    def _undo(self, device, made):
        """Delete the drive's snapshot; if the create's answer was lost,
        the one Cinder made anyway, found by its tags."""
        ids = [made['id']] if 'id' in made else [
            s.id for s in tagged_volume_snapshots(
                self.cinder, self.context.run_id, device.name)]
        for snapshot_id in ids:
            delete_volume_snapshot(self.cinder, snapshot_id,
                                   self.context.clock)

    def reached(self, capture):
        return self._reached(
            capture, self.cinder.volume_snapshots.get(capture.snapshot_id))

    @staticmethod
    def _reached(capture, snapshot):
        if snapshot.status == 'creating':
            return False
        if snapshot.status != 'available':
            raise errors.CaptureFailed(
                'Cinder could not snapshot the volume at %s (snapshot %s is '
                '%s).' % (capture.device.name, snapshot.id, snapshot.status))
        return True

    def reached_all(self, captures):
        """One listing of the run's snapshots per poll round, whatever the
        number of drives; a snapshot the listing misses is asked for on
        its own."""
        if len(captures) < 2:
            return super().reached_all(captures)
        listed = {s.id: s for s in self.cinder.volume_snapshots.list(
            detailed=True,
            search_opts={'metadata': {properties.RUN: self.context.run_id}})}
        return [c for c in captures if self._reached(
            c, listed.get(c.snapshot_id)
            or self.cinder.volume_snapshots.get(c.snapshot_id))]


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
        if device.kind == plan_module.ROOT_IMAGE:
            return None
        if device.kind == plan_module.EPHEMERAL:
            return ('an ephemeral disk can only be captured by the '
                    'compute-side agent, which is not configured')
        return 'not a local disk'

    def begin(self, device, rollback):
        made = {}
        rollback.add(events.Resource(events.IMAGE, 'of %s' % device.name),
                     self._undo, made)
        image_id = str(self.nova.servers.create_image(
            self.context.server_id, self.context.set_name,
            metadata={properties.RUN: self.context.run_id,
                      properties.SERVER: self.context.server_id}))
        made['id'] = image_id
        rollback.created(events.Resource(events.IMAGE, image_id))
        return Capture(device=device, image_id=image_id,
                       captured_by=self.name)

    def _undo(self, made):
        """Delete the image; if Nova's answer was lost, the one it made
        anyway, found by the run's tag (Nova copies it onto the image)."""
        ids = [made['id']] if 'id' in made else [
            image['id'] for image in tagged_images(self.glance,
                                                   self.context.run_id)]
        for image_id in ids:
            delete_image(self.glance, image_id)

    def package(self, captures, snapshot_set, plan, set_properties,
                rollback):
        if not any(c.image_id == snapshot_set.id for c in captures):
            return False
        self.glance.images.update(snapshot_set.id, **set_properties)
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
    LOCAL_KINDS = (plan_module.ROOT_IMAGE, plan_module.EPHEMERAL)

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
                                       self.context.lease_id,
                                       self.context.run_id)
        except agent_module.AgentError as e:
            raise errors.CaptureFailed(
                'The compute-side agent could not copy %s: %s'
                % (', '.join(d.name for d in devices), e)) from e
        # A copy whose answer was lost carries the run's id: the reaper
        # removes it once the run is dead, the agent itself after
        # ``capture_keep`` at the latest.
        self.capture_id = taken['id']
        resource = events.Resource(events.AGENT_COPY, taken['id'])
        rollback.add(resource, self.agent.delete_capture, server_id,
                     taken['id'])
        rollback.created(resource)
        formats = {d['device']: d['format'] for d in taken['drives']}
        return [Capture(device=d, image_id=str(uuid.uuid4()),
                        captured_by=self.name,
                        disk_format=formats[_dev(d.name)]) for d in devices]

    def reached(self, capture):
        # The backup job fixed the instant before begin_all returned.
        return True

    def package(self, captures, snapshot_set, plan, set_properties,
                rollback):
        """Create one image per copy, the root's being the set's image with
        the base image's properties (as Nova's snapshot inherits them), and
        have the agent upload into them: the set's image last, so it turns
        active only when every copy is in."""
        wrote_set = False
        uploads = []
        for c in sorted(captures, key=lambda c: c.image_id == snapshot_set.id):
            if c.image_id == snapshot_set.id:
                meta = dict(self._base_properties(plan), **set_properties)
                meta['base_image_ref'] = plan.image_id or ''
                wrote_set = True
            else:
                meta = {'image_type': 'snapshot',
                        properties.RUN: snapshot_set.run_id,
                        properties.SERVER: plan.server_id,
                        properties.MEMBER_OF: snapshot_set.id,
                        'instance_uuid': plan.server_id}
            resource = events.Resource(events.IMAGE, c.image_id)
            rollback.add(resource, delete_image, self.glance, c.image_id)
            self.glance.images.create(
                id=c.image_id, disk_format=c.disk_format,
                name='%s %s' % (snapshot_set.name, c.device.name)
                if c.image_id != snapshot_set.id else snapshot_set.name,
                container_format='bare', visibility='private',
                min_disk=c.device.size_gb, **meta)
            rollback.created(resource)
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
        return package_module.inherited_properties(
            {k: v for k, v in base.items() if k not in GLANCE_CORE})


# Glance's own fields of an image, not properties to inherit.
GLANCE_CORE = frozenset({
    'id', 'name', 'status', 'visibility', 'protected', 'owner', 'tags',
    'created_at', 'updated_at', 'file', 'schema', 'self', 'direct_url',
    'locations', 'virtual_size', 'os_hidden', 'stores', 'instance_uuid',
    'image_type', 'base_image_ref', 'owner_specified.openstack.md5',
    'owner_specified.openstack.sha256', 'owner_specified.openstack.object',
})


def tagged_volume_snapshots(cinder, run_id, device=None, all_projects=False):
    """The volume snapshots tagged with ``run_id`` (and ``device``)."""
    search = {'metadata': {properties.RUN: run_id}}
    if all_projects:
        search['all_tenants'] = 1
    return [s for s in cinder.volume_snapshots.list(detailed=True,
                                                    search_opts=search)
            # A Cinder without the metadata filter lists them all.
            if (s.metadata or {}).get(properties.RUN) == run_id
            and (device is None
                 or s.metadata.get(properties.DEVICE) == device)]


def tagged_images(glance, run_id):
    """The images tagged with ``run_id``."""
    return [image for image in glance.images.list(
        filters={properties.RUN: run_id}) if image.get(properties.RUN)
        == run_id]


def delete_volume_snapshot(cinder, snapshot_id, clock, settle_s=120):
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


@dataclasses.dataclass
class Capturers:
    """How a server's drives can be captured: its compute-side agent (None
    where there is none, or it cannot be found), what the agent said of the
    server (None where it could not be asked), and the capturers, in order
    of preference."""

    agent: agent_module.AgentClient | None
    agent_status: dict | None
    capturers: list

    def __iter__(self):
        return iter(self.capturers)

    def for_device(self, device):
        """The first capturer that can take ``device``, and why none can."""
        reasons = []
        for capturer in self.capturers:
            reason = capturer.cannot_capture(device)
            if reason is None:
                return capturer, None
            reasons.append(reason)
        return None, reasons[-1] if reasons else 'no capturer'

    def cannot_capture(self, device):
        """Why no capturer can take ``device``, or None."""
        return self.for_device(device)[1]


def locate(clients, context, agent_locator=None):
    """Find the server's agent with ``agent_locator`` (an AgentLocator, or
    None where no agent runs), ask it about the server, and line up the
    capturers: the agent's copy of local drives where its report says it
    can, else Nova's createImage; Cinder's snapshots for volumes."""
    agent = None
    if agent_locator is not None:
        try:
            agent = agent_locator.for_server(clients, context.server_id)
        except Exception:
            LOG.exception('Could not locate the agent of %s',
                          context.server_id)
    status = agent_module.probe(agent, context.server_id)
    available = [VolumeSnapshotCapturer(clients, context)]
    if agent is not None and status is not None:
        available.append(AgentDiskCapturer(
            clients, context, agent, status.get('local_drives') or []))
    available.append(NovaImageCapturer(clients, context))
    return Capturers(agent=agent, agent_status=status, capturers=available)
