"""Planning: from a server, its attachments and a selection to a plan.

``build_plan`` is pure (plain dicts in, a Plan out) so every shape of server
can be tested without a cloud; ``load_plan`` reads those dicts from Nova and
Cinder.
"""

import dataclasses
import re
import string

from novaclient import exceptions as nova_exceptions

from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors

ROOT_IMAGE = 'root-image'
ROOT_VOLUME = 'root-volume'
EPHEMERAL = 'ephemeral'
VOLUME = 'volume'

# Nova's createImage accepts these vm states (check_instance_state of
# compute.api.API.snapshot); task_state must be None.
SNAPSHOTTABLE_STATUSES = frozenset({'ACTIVE', 'SHUTOFF', 'PAUSED',
                                    'SUSPENDED'})

DEFAULT_DEVICE_PREFIX = '/dev/vd'
# The bus Nova's libvirt driver gives a boot volume named with this prefix.
BUS_OF_PREFIX = {'/dev/vd': 'virtio', '/dev/sd': 'scsi', '/dev/hd': 'ide',
                 '/dev/xvd': 'xen'}


@dataclasses.dataclass(frozen=True)
class Device:
    """One drive of a server, named as Nova names it (``/dev/vdb``)."""

    name: str
    kind: str
    size_gb: int
    volume_id: str | None = None
    volume_name: str | None = None
    boot_index: int | None = None
    delete_on_termination: bool = False
    # As Nova's BDM holds them: set for the boot volume, None for a volume
    # attached later (unless its user chose them).
    disk_bus: str | None = None
    device_type: str | None = None

    @property
    def is_volume(self):
        return self.kind in (ROOT_VOLUME, VOLUME)

    @property
    def is_root(self):
        return self.kind in (ROOT_IMAGE, ROOT_VOLUME)


@dataclasses.dataclass(frozen=True)
class Plan:
    server_id: str
    server_name: str
    project_id: str
    status: str
    root_device_name: str
    image_id: str | None
    devices: tuple
    excluded: tuple = ()  # (Device, reason) not captured, all-drives only
    root_image_properties: dict = dataclasses.field(default_factory=dict)

    @property
    def volume_devices(self):
        return [d for d in self.devices if d.is_volume]

    @property
    def running(self):
        return self.status == 'ACTIVE'

    @property
    def bootable(self):
        return any(d.is_root for d in self.devices)


def normalize_device_name(name):
    """``vdb``, ``/dev/vdb`` and `` /dev/vdb `` all name ``/dev/vdb``."""
    name = name.strip()
    if not name.startswith('/dev/'):
        name = '/dev/' + name
    return name


DEVICE_NAME = re.compile(r'(/dev/(?:xvd|vd|sd|hd))[a-z]+')


def _device_prefix(attachments):
    for attachment in attachments:
        match = DEVICE_NAME.fullmatch(attachment.get('device') or '')
        if match:
            return match.group(1)
    return DEFAULT_DEVICE_PREFIX


def _first_free_name(prefix, taken):
    for letter in string.ascii_lowercase:
        name = prefix + letter
        if name not in taken:
            return name
    raise ValueError('no free device name under %s' % prefix)


def check_owner(server, project_id):
    """A server of another project is, to this project, no server."""
    if server.get('tenant_id') != project_id:
        raise errors.ServerNotFound(server['id'])


def check_snapshottable(server):
    task_state = server.get('OS-EXT-STS:task_state')
    if server['status'] not in SNAPSHOTTABLE_STATUSES or task_state:
        raise errors.ServerNotSnapshottable(
            server.get('name') or server['id'], server['status'], task_state)


def list_devices(server, attachments, volumes):
    """Every drive of the server, root first, in Nova's naming.

    ``server`` is Nova's server body (microversion >= 2.47, flavor embedded),
    ``attachments`` Nova's volume attachments, ``volumes`` Cinder's volumes by
    id. Nova shows ``root_device_name`` to admins only; for anyone else the
    root takes the first name of the attachments' bus, as Nova's libvirt
    driver names it, and the ephemeral disk the first free name after it.
    """
    flavor = server.get('flavor') or {}
    prefix = _device_prefix(attachments)
    root_name = (server.get('OS-EXT-SRV-ATTR:root_device_name')
                 or prefix + 'a')
    image_backed = bool(server.get('image'))
    devices = []
    if image_backed:
        devices.append(Device(name=root_name, kind=ROOT_IMAGE,
                              size_gb=int(flavor.get('disk') or 0),
                              boot_index=0, delete_on_termination=True))
    taken = {root_name} | {a['device'] for a in attachments}
    if int(flavor.get('ephemeral') or 0) > 0:
        devices.append(Device(name=_first_free_name(prefix, taken),
                              kind=EPHEMERAL,
                              size_gb=int(flavor['ephemeral']),
                              delete_on_termination=True))
    for attachment in sorted(attachments, key=lambda a: a['device']):
        volume = volumes.get(attachment['volumeId'], {})
        is_root = not image_backed and attachment['device'] == root_name
        bus = None
        if is_root:
            image_properties = volume.get('volume_image_metadata') or {}
            bus = (image_properties.get('hw_disk_bus')
                   or BUS_OF_PREFIX.get(prefix))
        devices.append(Device(
            name=attachment['device'],
            kind=ROOT_VOLUME if is_root else VOLUME,
            size_gb=int(volume.get('size') or 0),
            volume_id=attachment['volumeId'],
            volume_name=volume.get('name') or None,
            boot_index=0 if is_root else None,
            delete_on_termination=bool(
                attachment.get('delete_on_termination', False)),
            disk_bus=bus, device_type='disk' if is_root else None))
    devices.sort(key=lambda d: (not d.is_root, d.name))
    return root_name, devices


def build_plan(server, attachments, volumes, project_id, selection=None,
               cannot_capture=lambda device: None):
    """Turn a server and a selection of its drives into a Plan.

    ``selection`` is None for every drive, or device names (``vdb`` or
    ``/dev/vdb``). ``cannot_capture(device)`` returns why a drive cannot be
    captured, or None: a drive named explicitly must be capturable; with
    every drive asked for, the ones that are not are listed in
    ``Plan.excluded`` with the reason.
    """
    check_owner(server, project_id)
    check_snapshottable(server)
    root_name, devices = list_devices(server, attachments, volumes)

    if selection is None:
        chosen = devices
    else:
        wanted = {normalize_device_name(name) for name in selection}
        known = {d.name for d in devices}
        if wanted - known:
            raise errors.UnknownDevices(wanted - known, known)
        chosen = [d for d in devices if d.name in wanted]

    reasons = {d.name: cannot_capture(d) for d in chosen}
    if selection is not None and any(reasons.values()):
        raise errors.DeviceNotCapturable(
            {name: why for name, why in reasons.items() if why})
    excluded = tuple((d, reasons[d.name]) for d in chosen if reasons[d.name])
    chosen = tuple(d for d in chosen if not reasons[d.name])
    if not chosen:
        raise errors.NothingSelected()

    root_properties = {}
    for device in chosen:
        if device.kind == ROOT_VOLUME:
            root_properties = dict(
                volumes[device.volume_id].get('volume_image_metadata') or {})
    image = server.get('image') or {}
    return Plan(server_id=server['id'], server_name=server.get('name') or '',
                project_id=project_id, status=server['status'],
                root_device_name=root_name, image_id=image.get('id'),
                devices=chosen, excluded=excluded,
                root_image_properties=root_properties)


def read_attachments(clients, server_id):
    """Nova's volume attachments of the server, as dicts."""
    try:
        return [a.to_dict() for a in
                clients.nova.volumes.get_server_volumes(server_id)]
    except nova_exceptions.NotFound:
        raise errors.ServerNotFound(server_id) from None


def read_server(clients, server_id):
    """Nova's server body, attachments and their Cinder volumes, as dicts."""
    try:
        server = clients.nova.servers.get(server_id).to_dict()
    except nova_exceptions.NotFound:
        raise errors.ServerNotFound(server_id) from None
    attachments = read_attachments(clients, server_id)
    ids = [a['volumeId'] for a in attachments]
    volumes = dict(zip(ids, clients_module.each(
        lambda volume_id: clients.cinder.volumes.get(volume_id).to_dict(),
        ids), strict=True))
    return server, attachments, volumes


def load_plan(clients, server_id, selection=None,
              cannot_capture=lambda device: None):
    server, attachments, volumes = read_server(clients, server_id)
    return build_plan(server, attachments, volumes, clients.project_id,
                      selection=selection, cannot_capture=cannot_capture)
