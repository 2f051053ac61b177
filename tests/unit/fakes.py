"""In-memory doubles of Nova, Cinder and Glance, as their clients show them.

They keep state (servers, volumes, snapshots, images), move it on as the
clock ticks (a snapshot leaves ``creating``, Nova's createImage walks its
task states, a pause lands) and raise the clients' own exceptions, so the
orchestration's real code runs against them. ``fail_at`` names the points
where a call fails, to prove every failure leaves nothing behind.
"""

import collections
import copy
import threading
import uuid

from cinderclient import exceptions as cinder_exceptions
from glanceclient import exc as glance_exceptions
from novaclient import exceptions as nova_exceptions

from snapshot_dashboard.orchestration import agent

PROJECT = 'project-demo'
OTHER_PROJECT = 'project-other'

# Every point where the doubles can be told to fail.
FAILURE_POINTS = (
    'nova.pause',
    'nova.unpause',
    'nova.create_image',
    'nova.snapshot_task',  # Nova's createImage task fails after the call
    'cinder.snapshot_create',
    'cinder.snapshot_status',  # a snapshot ends in 'error'
    'glance.create',
    'glance.upload',
    'glance.update',
    'agent.capture',
    'agent.upload',  # the agent's upload of a copy fails
)


class Resource(dict):
    """A client resource: item and attribute access, and ``to_dict``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self):
        return copy.deepcopy(dict(self))


class FakeCloud:
    def __init__(self, project_id=PROJECT, snapshot_ticks=2,
                 image_task_ticks=1):
        self.project_id = project_id
        self.snapshot_ticks = snapshot_ticks
        self.image_task_ticks = image_task_ticks
        self.fail_at = set()
        self.servers = {}
        self.attachments = {}  # server id -> list of attachment dicts
        self.volumes = {}
        self.snapshots = {}
        self.images = {}
        self.limits = {'maxTotalSnapshots': -1, 'totalSnapshotsUsed': 0,
                       'maxTotalVolumes': -1, 'totalVolumesUsed': 0,
                       'maxTotalVolumeGigabytes': -1,
                       'totalGigabytesUsed': 0}
        self.image_limit = -1
        self.pause_calls = []  # (call, server status seen) for assertions
        self.rebuilds = []  # (server id, image id)
        self.nova_max = '2.93'  # the highest microversion Nova serves
        self.uploads = []  # (volume id, image id) Cinder uploaded
        # A rebuild of a stopped server shows it active for a tick, as
        # Nova's does between its spawn and its own stop.
        self.rebuild_shows_active = False
        self.on_tick = []  # callables run at every tick, for tests
        self.requests = collections.Counter()  # by call, where counted
        self.lock = threading.RLock()
        self.nova = _Nova(self)
        self.cinder = _Cinder(self)
        self.glance = _Glance(self)

    def nova_at(self, version):
        return _Nova(self, reimage=tuple(map(int, version.split('.')))
                     >= (2, 93))

    def nova_supports(self, version):
        def parse(text):
            return tuple(map(int, text.split('.')))
        return parse(self.nova_max) >= parse(version)

    # -- seeding -----------------------------------------------------------

    def add_server(self, name='web', image_backed=True, ephemeral_gb=0,
                   volumes=(), root_gb=1, status='ACTIVE',
                   project_id=None, admin_root_name=False):
        """A server; ``volumes`` is a list of (device, size_gb)."""
        server_id = str(uuid.uuid4())
        image = {'id': 'image-cirros'} if image_backed else ''
        server = {
            'id': server_id, 'name': name, 'status': status,
            'tenant_id': project_id or self.project_id, 'image': image,
            'OS-EXT-STS:task_state': None,
            'flavor': {'disk': root_gb if image_backed else 0,
                       'ephemeral': ephemeral_gb, 'swap': 0,
                       'original_name': 'm1.test'},
        }
        if admin_root_name:
            server['OS-EXT-SRV-ATTR:root_device_name'] = '/dev/vda'
        self.servers[server_id] = server
        self.attachments[server_id] = []
        if not image_backed:
            root = self.add_volume(name + '-root', root_gb, bootable=True)
            self.attach(server_id, root, '/dev/vda', True)
        for device, size in volumes:
            volume = self.add_volume('%s-%s' % (name, device[-3:]), size)
            self.attach(server_id, volume, device)
        return server_id

    def add_volume(self, name, size, bootable=False):
        volume_id = str(uuid.uuid4())
        self.volumes[volume_id] = {
            'id': volume_id, 'name': name, 'size': size,
            'status': 'available', 'bootable': str(bootable).lower(),
            'metadata': {}, 'attachments': [],
            'created_at': '2026-11-25T00:00:00.000000',
            'os-vol-tenant-attr:tenant_id': self.project_id,
            'volume_image_metadata': ({'hw_qemu_guest_agent': 'yes',
                                       'image_id': 'image-cirros',
                                       'checksum': 'abc', 'size': '1024'}
                                      if bootable else None),
        }
        return volume_id

    def attach(self, server_id, volume_id, device,
               delete_on_termination=False):
        self.attachments[server_id].append({
            'id': volume_id, 'serverId': server_id, 'volumeId': volume_id,
            'device': device,
            'delete_on_termination': delete_on_termination})
        self.volumes[volume_id]['status'] = 'in-use'
        self.volumes[volume_id]['attachments'] = [
            {'server_id': server_id, 'device': device}]

    def detach(self, server_id, device):
        for attachment in list(self.attachments[server_id]):
            if attachment['device'] == device:
                self.attachments[server_id].remove(attachment)
                self.volumes[attachment['volumeId']]['status'] = 'available'
                self.volumes[attachment['volumeId']]['attachments'] = []

    # -- time --------------------------------------------------------------

    def tick(self):
        with self.lock:
            for snapshot in self.snapshots.values():
                if snapshot['status'] == 'creating':
                    snapshot['_ticks'] += 1
                    if snapshot['_ticks'] >= self.snapshot_ticks:
                        snapshot['status'] = (
                            'error' if 'cinder.snapshot_status' in
                            self.fail_at else 'available')
            for volume_id, image_id in self.uploads:
                if self.volumes.get(volume_id, {}).get(
                        'status') == 'uploading':
                    self.volumes[volume_id]['status'] = 'available'
                    if image_id in self.images:
                        self.images[image_id]['status'] = 'active'
            for volume in self.volumes.values():
                if volume['status'] == 'creating':
                    volume['status'] = ('error' if 'cinder.volume_status'
                                        in self.fail_at else 'available')
            for server in self.servers.values():
                self._advance_server(server)
            for hook in list(self.on_tick):
                hook()

    IMAGE_TASKS = ('image_snapshot_pending', 'image_snapshot',
                   'image_pending_upload', 'image_uploading', None)

    def _advance_server(self, server):
        pending = server.pop('_pending_status', None)
        if pending:
            server['status'] = pending
            if server.pop('_task_ends', False):
                server['OS-EXT-STS:task_state'] = None
                then = server.pop('_then', None)
                if then:  # a state shown for one tick before the next
                    server['_pending_status'] = then
                    server['_task_ends'] = True
                return
        task = server['OS-EXT-STS:task_state']
        if task not in self.IMAGE_TASKS or task is None:
            return
        server['_task_ticks'] = server.get('_task_ticks', 0) + 1
        if server['_task_ticks'] < self.image_task_ticks:
            return
        server['_task_ticks'] = 0
        next_task = self.IMAGE_TASKS[self.IMAGE_TASKS.index(task) + 1]
        image = self.images.get(server['_snapshot_image'])
        if next_task == 'image_uploading' and image is not None:
            image['status'] = 'saving'
        if next_task is None and image is not None:
            if 'nova.snapshot_task' in self.fail_at:
                # Nova deletes the image when its snapshot fails.
                del self.images[image['id']]
            else:
                image['status'] = 'active'
                image['size'] = 1024
        server['OS-EXT-STS:task_state'] = next_task

    def check(self, point, exception):
        if point in self.fail_at:
            raise exception

    # -- what tests look at ------------------------------------------------

    def server_status(self, server_id):
        return self.servers[server_id]['status']


class _Nova:
    def __init__(self, cloud, reimage=False):
        self.servers = _Servers(cloud, reimage)
        self.volumes = _ServerVolumes(cloud)


class _Servers:
    def __init__(self, cloud, reimage=False):
        self.cloud = cloud
        self.reimage = reimage  # at 2.93: a volume-backed server rebuilds

    def _get(self, server_id):
        server = self.cloud.servers.get(getattr(server_id, 'id', server_id))
        if server is None or (server['tenant_id'] != self.cloud.project_id
                              and not getattr(self.cloud, 'admin', False)):
            raise nova_exceptions.NotFound(404, 'Instance not found')
        return server

    def get(self, server_id):
        server = self._get(server_id)
        return Resource({k: v for k, v in server.items()
                         if not k.startswith('_')})

    def _conflict(self, server, action):
        return nova_exceptions.Conflict(
            409, 'Cannot %s instance while it is in vm_state %s, task_state '
            '%s' % (action, server['status'],
                    server['OS-EXT-STS:task_state']))

    def pause(self, server_id):
        server = self._get(server_id)
        self.cloud.pause_calls.append(('pause', server['status']))
        self.cloud.check('nova.pause',
                         nova_exceptions.ClientException(500, 'pause failed'))
        if server['status'] != 'ACTIVE' or server['OS-EXT-STS:task_state']:
            raise self._conflict(server, 'pause')
        server['_pending_status'] = 'PAUSED'

    def unpause(self, server_id):
        server = self._get(server_id)
        self.cloud.pause_calls.append(('unpause', server['status']))
        self.cloud.check('nova.unpause', nova_exceptions.ClientException(
            500, 'unpause failed'))
        if server['status'] != 'PAUSED' or server['OS-EXT-STS:task_state']:
            raise self._conflict(server, 'unpause')
        server['_pending_status'] = 'ACTIVE'

    def _power(self, server_id, action, before, after):
        server = self._get(server_id)
        self.cloud.pause_calls.append((action, server['status']))
        if server['status'] != before or server['OS-EXT-STS:task_state']:
            raise self._conflict(server, action)
        server.update({'OS-EXT-STS:task_state': 'powering-%s' % action,
                       '_pending_status': after, '_task_ends': True})

    def stop(self, server_id):
        self._power(server_id, 'stop', 'ACTIVE', 'SHUTOFF')

    def start(self, server_id):
        self._power(server_id, 'start', 'SHUTOFF', 'ACTIVE')

    def rebuild(self, server_id, image):
        """A stopped server stays stopped; one in error comes back
        running. ``nova.rebuild`` refuses it; ``nova.rebuild_fails`` fails
        it on the compute node (the server goes into error)."""
        server = self._get(server_id)
        self.cloud.check('nova.rebuild', nova_exceptions.BadRequest(
            400, 'Image not usable'))
        if server['OS-EXT-STS:task_state'] or not (
                server['image'] or self.reimage):
            raise self._conflict(server, 'rebuild')
        self.cloud.rebuilds.append((server_id, image))
        failed = 'nova.rebuild_fails' in self.cloud.fail_at
        if self.cloud.rebuild_shows_active and not failed and \
                server['status'] == 'SHUTOFF':
            # Nova spawns it, shows it active, then stops it itself.
            server.update({'OS-EXT-STS:task_state': 'rebuilding',
                           '_task_ends': True, '_pending_status': 'ACTIVE',
                           '_then': 'SHUTOFF'})
            if server['image']:
                server['image'] = {'id': image}
            return
        server.update({
            'OS-EXT-STS:task_state': 'rebuilding', '_task_ends': True,
            '_pending_status': 'ERROR' if failed else (
                'SHUTOFF' if server['status'] == 'SHUTOFF' else 'ACTIVE')})
        if not failed and server['image']:
            server['image'] = {'id': image}

    def create_image(self, server_id, image_name, metadata=None):
        server = self._get(server_id)
        self.cloud.check('nova.create_image', nova_exceptions.ClientException(
            500, 'createImage failed'))
        if server['OS-EXT-STS:task_state']:
            raise self._conflict(server, 'createImage')
        image = self.cloud.glance.images.create(
            name=image_name, instance_uuid=server['id'],
            image_type='snapshot', hw_qemu_guest_agent='yes',
            _by_nova=True, **(metadata or {}))
        server['OS-EXT-STS:task_state'] = 'image_snapshot_pending'
        server['_snapshot_image'] = image['id']
        self.cloud.check('nova.create_image_answer',
                         nova_exceptions.ClientException(
                             502, 'bad gateway'))
        return image['id']


class _ServerVolumes:
    def __init__(self, cloud):
        self.cloud = cloud

    def get_server_volumes(self, server_id):
        self.cloud.nova.servers._get(server_id)
        return [Resource(a) for a in self.cloud.attachments[server_id]]

    def create_server_volume(self, server_id, volume_id, device=None):
        cloud = self.cloud
        cloud.nova.servers._get(server_id)
        cloud.check('nova.attach', nova_exceptions.ClientException(
            500, 'attach failed'))
        volume = cloud.volumes.get(volume_id)
        if volume is None or volume['status'] != 'available':
            raise nova_exceptions.BadRequest(400, 'volume not available')
        used = {a['device'] for a in cloud.attachments[server_id]}
        if cloud.servers[server_id]['flavor']['ephemeral']:
            used.add('/dev/vdb')  # Nova's name for the ephemeral disk
        device = next('/dev/vd%s' % c for c in 'bcdefghijklmnop'
                      if '/dev/vd%s' % c not in used)
        cloud.attach(server_id, volume_id, device)
        return Resource(id=volume_id, device=device)

    def delete_server_volume(self, server_id, volume_id):
        cloud = self.cloud
        cloud.check('nova.detach', nova_exceptions.Conflict(
            409, 'detach refused'))
        for attachment in cloud.attachments[server_id]:
            if attachment['volumeId'] == volume_id:
                cloud.detach(server_id, attachment['device'])
                return
        raise nova_exceptions.NotFound(404, 'volume not attached')


class _Cinder:
    def __init__(self, cloud):
        self.volumes = _Volumes(cloud)
        self.volume_snapshots = _Snapshots(cloud)
        self.limits = _Limits(cloud)


class _Volumes:
    def __init__(self, cloud):
        self.cloud = cloud

    def get(self, volume_id):
        if volume_id not in self.cloud.volumes:
            raise cinder_exceptions.NotFound(404, 'Volume not found')
        return Resource(copy.deepcopy(self.cloud.volumes[volume_id]))

    def create(self, size, snapshot_id=None, name=None, description=None,
               imageRef=None, metadata=None):  # noqa: N803 - Cinder's name
        cloud = self.cloud
        cloud.check('cinder.volume_create',
                    cinder_exceptions.ClientException(500, 'create failed'))
        source = (cloud.snapshots.get(snapshot_id) if snapshot_id
                  else cloud.images.get(imageRef))
        if source is None:
            raise cinder_exceptions.NotFound(404, 'source not found')
        volume_id = cloud.add_volume(name, size)
        cloud.volumes[volume_id].update(
            status='creating', metadata=dict(metadata or {}),
            description=description, snapshot_id=snapshot_id,
            image_id=imageRef)
        cloud.check('cinder.volume_create_answer',
                    cinder_exceptions.ConnectionError('connection reset'))
        return Resource(id=volume_id, status='creating')

    def delete(self, volume_id):
        volume = self.cloud.volumes.get(volume_id)
        if volume is None:
            raise cinder_exceptions.NotFound(404, 'Volume not found')
        if volume['status'] not in ('available', 'error'):
            raise cinder_exceptions.BadRequest(
                400, 'Volume status must be available or error')
        del self.cloud.volumes[volume_id]

    def list(self, detailed=True, search_opts=None):
        wanted = (search_opts or {}).get('metadata') or {}
        return [self.get(v['id']) for v in list(self.cloud.volumes.values())
                if all(v['metadata'].get(k) == value
                       for k, value in wanted.items())]

    def set_metadata(self, volume_id, metadata):
        volume = self.cloud.volumes.get(volume_id)
        if volume is None:
            raise cinder_exceptions.NotFound(404, 'Volume not found')
        volume['metadata'].update(metadata)

    def update(self, volume_id, **fields):
        self.cloud.volumes[volume_id].update(fields)

    def set_image_metadata(self, volume_id, metadata):
        volume = self.cloud.volumes[volume_id]
        volume['volume_image_metadata'] = dict(
            volume.get('volume_image_metadata') or {}, **metadata)

    def upload_to_image(self, volume_id, force, image_name, container_format,
                        disk_format, visibility, protected):
        """Cinder's upload: an image (active at the next tick) of the
        volume, which is ``uploading`` meanwhile, with the volume's image
        metadata as its properties."""
        volume = self.cloud.volumes[volume_id]
        if volume['status'] != 'available':
            raise cinder_exceptions.BadRequest(400, 'volume not available')
        image = self.cloud.glance.images.create(
            name=image_name, disk_format=disk_format, _by_nova=True,
            container_format=container_format, status='saving',
            **(volume.get('volume_image_metadata') or {}))
        volume.update(status='uploading', uploaded_to=image['id'])
        self.cloud.uploads.append((volume_id, image['id']))
        return None, {'os-volume_upload_image': {'image_id': image['id']}}


class _Snapshots:
    def __init__(self, cloud):
        self.cloud = cloud

    def create(self, volume_id, force=False, name=None, description=None,
               metadata=None):
        cloud = self.cloud
        cloud.check('cinder.snapshot_create',
                    cinder_exceptions.ClientException(500, 'create failed'))
        volume = cloud.volumes.get(volume_id)
        if volume is None:
            raise cinder_exceptions.NotFound(404, 'Volume not found')
        if volume['status'] == 'in-use' and not force:
            raise cinder_exceptions.BadRequest(400, 'Volume is in use')
        snapshot_id = str(uuid.uuid4())
        with cloud.lock:
            cloud.snapshots[snapshot_id] = {
                'id': snapshot_id, 'volume_id': volume_id, 'name': name,
                'description': description, 'status': 'creating',
                'size': volume['size'], 'metadata': dict(metadata or {}),
                'created_at': '2026-11-25T00:00:00.000000',
                'os-extended-snapshot-attributes:project_id':
                    cloud.project_id, '_ticks': 0}
        # Made, but the answer never reaches the caller.
        cloud.check('cinder.snapshot_create_answer',
                    cinder_exceptions.ConnectionError('connection reset'))
        return Resource(id=snapshot_id, status='creating')

    def get(self, snapshot_id):
        self.cloud.requests['cinder.snapshot_get'] += 1
        return self._get(snapshot_id)

    def _get(self, snapshot_id):
        snapshot = self.cloud.snapshots.get(snapshot_id)
        if snapshot is None:
            raise cinder_exceptions.NotFound(404, 'Snapshot not found')
        return Resource({k: v for k, v in snapshot.items()
                         if not k.startswith('_')})

    def delete(self, snapshot_id):
        snapshot = self.cloud.snapshots.get(snapshot_id)
        if snapshot is None:
            raise cinder_exceptions.NotFound(404, 'Snapshot not found')
        self.cloud.check('cinder.snapshot_delete',
                         cinder_exceptions.ClientException(500, 'busy'))
        if snapshot['status'] not in ('available', 'error'):
            raise cinder_exceptions.BadRequest(
                400, 'Snapshot status must be available or error')
        del self.cloud.snapshots[snapshot_id]

    def list(self, detailed=True, search_opts=None):
        # As Cinder's: filtered by the metadata asked for.
        self.cloud.requests['cinder.snapshot_list'] += 1
        wanted = (search_opts or {}).get('metadata') or {}
        return [s for s in (self._get(sid) for sid in list(
            self.cloud.snapshots)) if all(
                s['metadata'].get(k) == v for k, v in wanted.items())]

    def reset_state(self, snapshot_id, state):
        snapshot = self.cloud.snapshots.get(snapshot_id)
        if snapshot is None:
            raise cinder_exceptions.NotFound(404, 'Snapshot not found')
        snapshot['status'] = state

    def set_metadata(self, snapshot_id, metadata):
        snapshot = self.cloud.snapshots.get(snapshot_id)
        if snapshot is None:
            raise cinder_exceptions.NotFound(404, 'Snapshot not found')
        snapshot['metadata'].update(metadata)
        return Resource(metadata=dict(snapshot['metadata']))


class _Limits:
    def __init__(self, cloud):
        self.cloud = cloud

    def get(self):
        return Resource(absolute=[Resource(name=k, value=v) for k, v in
                                  self.cloud.limits.items()])


class _Glance:
    def __init__(self, cloud):
        self.images = _Images(cloud)
        self.info = _Info(cloud)


class _Images:
    def __init__(self, cloud):
        self.cloud = cloud

    def create(self, _by_nova=False, **fields):
        cloud = self.cloud
        if not _by_nova:
            cloud.check('glance.create',
                        glance_exceptions.HTTPInternalServerError())
        image_id = fields.pop('id', None) or str(uuid.uuid4())
        n = len(cloud.images)
        image = Resource({'status': 'queued', 'owner': cloud.project_id,
                          'visibility': 'private',
                          'created_at': '2026-11-25T%02d:%02d:%02dZ'
                          % (n // 3600, n // 60 % 60, n % 60),
                          **fields, 'id': image_id})
        with cloud.lock:
            cloud.images[image_id] = image
        return Resource(image)

    def _get(self, image_id):
        image = self.cloud.images.get(image_id)
        if image is None:
            raise glance_exceptions.HTTPNotFound()
        return image

    def get(self, image_id):
        self.cloud.requests['glance.image_get'] += 1
        return Resource(self._get(image_id))

    def update(self, image_id, remove_props=None, **properties):
        self.cloud.check('glance.update',
                         glance_exceptions.HTTPInternalServerError())
        image = self._get(image_id)
        image.update(properties)
        return Resource(image)

    def upload(self, image_id, data, image_size=None):
        self.cloud.check('glance.upload',
                         glance_exceptions.HTTPInternalServerError())
        image = self._get(image_id)
        image['size'] = len(data.read())
        image['status'] = 'active'

    def delete(self, image_id):
        self._get(image_id)
        del self.cloud.images[image_id]

    def list(self, filters=None, sort_key=None, sort_dir=None,
             page_size=None, marker=None):
        """As glanceclient's: read from Glance a page at a time, as the
        caller goes on, after the image ``marker``."""
        found = [Resource(image) for image in self.cloud.images.values()
                 if all(image.get(k) == v for k, v in (filters or {}).items())]
        found.sort(key=lambda i: i['created_at'], reverse=sort_dir == 'desc')
        if marker is not None:
            ids = [i['id'] for i in found]
            if marker not in ids:  # as Glance: 400
                raise glance_exceptions.HTTPBadRequest(
                    'marker not found: %s' % marker)
            found = found[ids.index(marker) + 1:]
        return self._pages(found, page_size or 20)

    def _pages(self, found, page_size):
        for start in range(0, max(len(found), 1), page_size):
            self.cloud.requests['glance.image_list'] += 1
            yield from found[start:start + page_size]


class _Info:
    def __init__(self, cloud):
        self.cloud = cloud

    def get_usage(self):
        return {'image_count_total': {'limit': self.cloud.image_limit,
                                      'usage': len(self.cloud.images)}}


class FakeClock:
    """Time that passes only when the orchestration sleeps; every sleep
    moves the cloud on by one tick."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.t = 1000.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds
        self.cloud.tick()


class FakeAgent(agent.AgentClient):
    """The compute-side agent of FakeCloud's servers: AgentClient's calls,
    answered here instead of over HTTP.

    ``guest_agent`` says whether qemu-ga answers; ``watchdog_first`` makes
    the agent's watchdog end every hold ``watchdog_held_ms`` after it began,
    before the caller releases it; ``copies``
    makes it report the server's local drives as capturable and copy them
    (an upload completes at the cloud's next tick).
    """

    def __init__(self, cloud, guest_agent=True, reachable=True,
                 watchdog_first=False, watchdog_held_ms=0, copies=False):
        super().__init__(session=None, url='http://agent.test:9797')
        self.cloud = cloud
        self.guest_agent = guest_agent
        self.reachable = reachable
        self.watchdog_first = watchdog_first
        self.watchdog_held_ms = watchdog_held_ms
        self.copies = copies
        self.calls = []
        self.held = {}  # server -> 'freeze' | 'pause'
        self.leases = {}  # server -> lease id
        self.captures = {}  # id -> capture dict
        self.copy_age_s = 0.0  # the age list_captures gives every copy
        self.listable = True
        cloud.on_tick.append(self._upload)

    def server(self, server_id):
        if not self.reachable:
            raise agent.AgentError(503, 'agent down')
        return {'id': server_id, 'guest_agent': self.guest_agent,
                'power_state': 'running',
                'local_drives': self._drives(server_id)}

    def _drives(self, server_id):
        if not self.copies:
            return []
        server = self.cloud.servers[server_id]
        devices = ['vda'] if server['image'] else []
        if server['flavor']['ephemeral']:
            devices.append('vdb' if server['image'] else 'vda')
        return [{'device': d, 'format': 'qcow2', 'capturable': True,
                 'reason': None} for d in devices]

    def _take(self, action, server_id, budget_s):
        self.calls.append((action, server_id))
        self.held[server_id] = action
        self.leases[server_id] = 'lease-%d' % len(self.calls)
        return {'id': self.leases[server_id], 'kind': action}

    def _release(self, action, server_id, lease_id):
        self.calls.append((action, server_id))
        del self.held[server_id]
        del self.leases[server_id]
        if self.watchdog_first:
            return {'id': lease_id, 'released_by': 'watchdog',
                    'held_ms': self.watchdog_held_ms}
        return {'id': lease_id, 'released_by': 'caller'}

    def capture(self, server_id, devices, lease_id=None, run_id=None):
        self.calls.append(('capture', server_id, tuple(devices), lease_id,
                           self.held.get(server_id)))
        if lease_id is not None and self.leases.get(server_id) != lease_id:
            raise agent.AgentError(409, 'lease does not hold the server')
        self.cloud.check('agent.capture', agent.AgentError(409, 'refused'))
        capture_id = 'capture-%d' % len(self.calls)
        self.captures[capture_id] = {
            'id': capture_id, 'state': 'copied', 'exports': {},
            'server': server_id, 'run': run_id, 'project':
                self.cloud.project_id, 'age_s': self.copy_age_s,
            'drives': [{'device': d, 'format': 'qcow2'} for d in devices]}
        return dict(self.captures[capture_id])

    def show_capture(self, server_id, capture_id):
        return dict(self.captures[capture_id])

    def write_drive(self, server_id, device, image_id):
        """``agent.write`` refuses it; a server that is not shut off too."""
        self.calls.append(('write', server_id, device, image_id))
        self.cloud.check('agent.write', agent.AgentError(500, 'qemu-img '
                                                         'failed'))
        status = self.cloud.servers[server_id]['status']
        if status != 'SHUTOFF':
            raise agent.AgentError(409, 'Server %s is %s' % (server_id,
                                                             status))
        return {'server': server_id, 'device': device, 'image': image_id}

    def list_captures(self):
        if not self.listable:
            raise agent.AgentError(503, 'libvirt is unreachable')
        return [dict(c, age_s=self.copy_age_s) for c in
                self.captures.values()
                if c['state'] == 'copied' and not c['exports']]

    def export_capture(self, server_id, capture_id, images):
        self.calls.append(('export', server_id, tuple(images)))
        capture = self.captures[capture_id]
        capture['state'] = 'exporting'
        capture['exports'] = dict(images)
        return dict(capture)

    def delete_capture(self, server_id, capture_id):
        self.calls.append(('delete-capture', server_id, capture_id))
        self.captures[capture_id]['state'] = 'deleted'

    @property
    def copies_held(self):
        """Captures whose copies are still on the compute node."""
        return [c for c in self.captures.values()
                if c['state'] in ('copied', 'exporting')]

    def _upload(self):
        for capture in list(self.captures.values()):
            if capture['state'] != 'exporting':
                continue
            if 'agent.upload' in self.cloud.fail_at:
                capture['state'] = 'failed'
                capture['error'] = 'Glance refused the upload'
                continue
            for image_id in capture['exports'].values():
                image = self.cloud.images.get(image_id)
                if image is not None:
                    image.update(status='active', size=4096)
            capture['state'] = 'exported'  # and the copies removed


class FakeAgents:
    """An AgentLocator that hands out one FakeAgent."""

    def __init__(self, agent):
        self.agent = agent

    def for_server(self, clients, server_id):
        return self.agent
