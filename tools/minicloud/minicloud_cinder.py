"""A Cinder volume driver for the mini-cloud: sparse files behind loop devices.

Each volume is a sparse file in ``loop_dir`` attached to a loop device;
Nova attaches it to the guest as a real virtio disk through ``local``
connection info. Snapshots and clones are sparse copies; a volume from an
image is written with qemu-img. ``loop_snapshot_latency_s`` makes every
snapshot take that much longer, so benchmarks can emulate slow storage;
while a file ``snapshot-latency-s`` in ``loop_dir`` holds a number, that
number is used instead (benchmarks switch it, no restart needed).
Snapshots are taken concurrently, as real backends take them: the copy
and the wait yield to cinder-volume's other green threads.
While a file ``fault-snapshot-error`` exists in ``loop_dir``, new
snapshots of the volumes it lists (one id a line; empty: of every volume)
fail after that latency, and Cinder sets them to ``error``: the fault
trials of tools/faults switch it on and off, no restart needed.

Cinder loads it with ``volume_driver = minicloud_cinder.LoopDriver`` and
``tools/minicloud`` on its PYTHONPATH. It is for the mini-cloud only.
"""

import os
import subprocess
import time

from cinder import exception
from cinder.image import image_utils
from cinder.volume import driver
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

loop_opts = [
    cfg.StrOpt('loop_dir', help='Where the sparse volume files live.'),
    cfg.IntOpt('loop_capacity_gb', default=100,
               help='Capacity reported to the scheduler.'),
    cfg.FloatOpt('loop_snapshot_latency_s', default=0.0,
                 help='Extra time every snapshot takes (slow storage).'),
]
# In loop_dir: while it exists, snapshots of the volumes it lists (or of
# every volume, if it lists none) end in error.
SNAPSHOT_ERROR_SWITCH = 'fault-snapshot-error'
# In loop_dir: while it exists, the latency of every snapshot, in seconds.
SNAPSHOT_LATENCY_SWITCH = 'snapshot-latency-s'
cfg.CONF.register_opts(loop_opts, group='backend_defaults')


def _run(*command):
    return subprocess.run(command, check=True, capture_output=True,
                          text=True).stdout.strip()


class LoopDriver(driver.VolumeDriver):
    VERSION = '1.0.0'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(loop_opts)
        self.backend_name = (self.configuration.safe_get(
            'volume_backend_name') or 'loop')

    # -- where things are ---------------------------------------------------

    def _path(self, name):
        return os.path.join(self.configuration.loop_dir, name + '.img')

    @staticmethod
    def _loop_of(path):
        """The loop device backing ``path``, or None."""
        found = _run('losetup', '-j', path)
        return found.split(':', 1)[0] if found else None

    def _attach_loop(self, path):
        return self._loop_of(path) or _run('losetup', '-f', '--show', path)

    def _detach_loop(self, path):
        device = self._loop_of(path)
        if device:
            _run('losetup', '-d', device)

    # -- setup and stats ------------------------------------------------------

    def do_setup(self, context):
        os.makedirs(self.configuration.loop_dir, exist_ok=True)

    def check_for_setup_error(self):
        _run('losetup', '--version')

    def _update_volume_stats(self):
        capacity = self.configuration.loop_capacity_gb
        used = sum(os.stat(os.path.join(self.configuration.loop_dir, f))
                   .st_blocks * 512 for f in
                   os.listdir(self.configuration.loop_dir)) / 1024 ** 3
        self._stats = {
            'volume_backend_name': self.backend_name,
            'vendor_name': 'snapshot_dashboard mini-cloud',
            'driver_version': self.VERSION,
            'storage_protocol': 'local',
            'total_capacity_gb': capacity,
            'free_capacity_gb': max(0, capacity - used),
            'reserved_percentage': 0,
            'thin_provisioning_support': True,
            'max_over_subscription_ratio': 20.0,
            'multiattach': False,
        }

    # -- volumes --------------------------------------------------------------

    def create_volume(self, volume):
        path = self._path(volume.name)
        with open(path, 'wb') as f:
            f.truncate(volume.size * 1024 ** 3)
        return {'provider_location': self._attach_loop(path)}

    def delete_volume(self, volume):
        path = self._path(volume.name)
        self._detach_loop(path)
        if os.path.exists(path):
            os.unlink(path)

    def extend_volume(self, volume, new_size):
        path = self._path(volume.name)
        with open(path, 'r+b') as f:
            f.truncate(new_size * 1024 ** 3)
        device = self._loop_of(path)
        if device:
            _run('losetup', '-c', device)

    def _copy(self, source, target, size_gb):
        _run('cp', '--sparse=always', source, target)
        with open(target, 'r+b') as f:
            f.truncate(size_gb * 1024 ** 3)

    def create_snapshot(self, snapshot):
        start = time.monotonic()
        failing = self._snapshot_fails(snapshot.volume_id)
        if not failing:
            self._copy(self._path(snapshot.volume_name),
                       self._path(snapshot.name), snapshot.volume_size)
        latency = self._snapshot_latency_s()
        if latency:
            time.sleep(max(0.0, latency - (time.monotonic() - start)))
        if failing:
            raise exception.VolumeDriverException(
                message='Snapshot %s failed: the fault switch %s is on.'
                % (snapshot.id, SNAPSHOT_ERROR_SWITCH))

    def _snapshot_latency_s(self):
        try:
            with open(os.path.join(self.configuration.loop_dir,
                                   SNAPSHOT_LATENCY_SWITCH)) as f:
                return float(f.read())
        except (FileNotFoundError, ValueError):
            return self.configuration.loop_snapshot_latency_s

    def _snapshot_fails(self, volume_id):
        try:
            with open(os.path.join(self.configuration.loop_dir,
                                   SNAPSHOT_ERROR_SWITCH)) as f:
                listed = f.read().split()
        except FileNotFoundError:
            return False
        return not listed or volume_id in listed

    def delete_snapshot(self, snapshot):
        path = self._path(snapshot.name)
        if os.path.exists(path):
            os.unlink(path)

    def create_volume_from_snapshot(self, volume, snapshot):
        path = self._path(volume.name)
        self._copy(self._path(snapshot.name), path, volume.size)
        return {'provider_location': self._attach_loop(path)}

    def create_cloned_volume(self, volume, src_vref):
        path = self._path(volume.name)
        self._copy(self._path(src_vref.name), path, volume.size)
        return {'provider_location': self._attach_loop(path)}

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        path = self._path(volume.name)
        image_utils.fetch_to_raw(context, image_service, image_id, path,
                                 self.configuration.volume_dd_blocksize,
                                 size=volume.size)
        # qemu-img may have replaced the file: the loop must see the new one.
        self._detach_loop(path)
        with open(path, 'r+b') as f:
            f.truncate(volume.size * 1024 ** 3)
        self._attach_loop(path)

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        image_utils.upload_volume(context, image_service, image_meta,
                                  self._path(volume.name))

    # -- exports and connections ---------------------------------------------

    def ensure_export(self, context, volume):
        # After a reboot the loop devices are gone: attach them again.
        path = self._path(volume.name)
        if os.path.exists(path):
            return {'provider_location': self._attach_loop(path)}

    def create_export(self, context, volume, connector):
        return self.ensure_export(context, volume)

    def remove_export(self, context, volume):
        pass

    def initialize_connection(self, volume, connector):
        device = self._attach_loop(self._path(volume.name))
        return {'driver_volume_type': 'local',
                'data': {'device_path': device,
                         'volume_id': volume.id,
                         'access_mode': 'rw'}}

    def terminate_connection(self, volume, connector, **kwargs):
        pass
