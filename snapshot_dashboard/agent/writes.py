"""Writing a Glance image back into a stopped guest's local drive.

What a restore in place does with an ephemeral disk: Nova has no call
that fills one. The image (an ephemeral copy of a set, made by a capture)
is downloaded into ``work_dir`` with the caller's own token, then
``qemu-img convert -n`` writes every block of it into the drive's file,
zeroes included, so nothing of the drive as it was shows through (a qcow2
drive's backing file included). QEMU's own image locks keep the write and
a guest start apart: while one holds the file the other fails; and the
guest must be shut off before it begins.
"""

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import uuid

LOG = logging.getLogger(__name__)

QEMU_IMG = 'qemu-img'
# qemu-img on a file a user gave: bounded as Nova bounds it.
INFO_LIMITS = ('prlimit', '--as=%d' % (1024 ** 3), '--cpu=30')
CONVERT_TIMEOUT_S = 1800
FORMATS = ('qcow2', 'raw')
# Only Nova's ephemeral disks are written (``disk.eph0``): never a root.
EPHEMERAL_FILE = re.compile(r'disk\.eph[0-9]+')
# An image of a drive is at most the drive's size, and a qcow2 its
# metadata more: what may be downloaded for it.
OVERHEAD = 1.1
OVERHEAD_BYTES = 64 * 1024 * 1024


class WriteError(Exception):
    status = 409


class WritesBusy(WriteError):
    status = 503


class Writes:
    """One write at a time per server, ``max_writes`` at a time in all
    (each holds a thread of the agent for as long as it takes)."""

    def __init__(self, work_dir, run=subprocess.run, max_writes=2):
        self.work_dir = work_dir
        self._run = run
        self._busy = set()
        self._lock = threading.Lock()
        self.max_writes = max_writes

    def write(self, guest, device, image_id, download):
        """Write image ``image_id`` into the local drive ``device`` of the
        shut-off ``guest``. ``download(image_id, path, max_bytes)``
        fetches it (refusing one larger than ``max_bytes``) and returns its
        Glance ``disk_format``: the format it is read as, never one guessed
        from its bytes (a raw image can look like a qcow2 naming a host
        file as its backing file). Returns what was written."""
        drive = {d['device']: d for d in guest.local_drives()}.get(device)
        if drive is None:
            raise WriteError('Server %s has no local drive %s.'
                             % (guest.uuid, device))
        if not EPHEMERAL_FILE.fullmatch(os.path.basename(drive['file'])):
            raise WriteError('Drive %s of server %s is not an ephemeral '
                             'disk: only those are written.'
                             % (device, guest.uuid))
        if drive['format'] not in FORMATS:
            raise WriteError('Drive %s of server %s is %s: only qcow2 and '
                             'raw drives can be written.'
                             % (device, guest.uuid, drive['format']))
        with self._lock:
            if guest.uuid in self._busy:
                raise WriteError('A drive of server %s is being written.'
                                 % guest.uuid)
            if len(self._busy) >= self.max_writes:
                raise WritesBusy('%d drives are being written on this host; '
                                 'try again later.' % len(self._busy))
            self._busy.add(guest.uuid)
        path = os.path.join(self.work_dir, 'write-%s' % uuid.uuid4())
        began = time.monotonic()
        try:
            # Checked here, after the lock: a start while we download is
            # refused by QEMU's lock once qemu-img holds the file.
            self._check_shut_off(guest)
            target = self._info(drive['file'], drive['format'],
                                force_share=True)
            os.makedirs(self.work_dir, mode=0o700, exist_ok=True)
            max_bytes = int(target['virtual-size'] * OVERHEAD
                            + OVERHEAD_BYTES)
            free = shutil.disk_usage(self.work_dir).free
            if free < max_bytes:
                raise WritesBusy('No room to fetch the image here: %d bytes '
                                 'free, up to %d needed.' % (free,
                                                             max_bytes))
            disk_format = download(image_id, path, max_bytes)
            if disk_format not in FORMATS:
                raise WriteError('Image %s is %s: only %s images can be '
                                 'written.' % (image_id, disk_format,
                                               ' and '.join(FORMATS)))
            source = self._info(path, disk_format)
            if source.get('backing-filename') or source.get(
                    'format-specific', {}).get('data', {}).get('data-file'):
                raise WriteError('Image %s refers to other files: it cannot '
                                 'be written.' % image_id)
            if source['virtual-size'] > target['virtual-size']:
                raise WriteError(
                    'Image %s (%d bytes) is larger than drive %s of server '
                    '%s (%d bytes).' % (image_id, source['virtual-size'],
                                        device, guest.uuid,
                                        target['virtual-size']))
            self._check_shut_off(guest)
            self._qemu_img('convert', '-n', '-f', disk_format,
                           '-O', drive['format'], path, drive['file'],
                           timeout_s=CONVERT_TIMEOUT_S)
        finally:
            with self._lock:
                self._busy.discard(guest.uuid)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        LOG.info('Wrote image %s into %s of %s in %.1f s', image_id, device,
                 guest.uuid, time.monotonic() - began)
        return {'server': guest.uuid, 'device': device, 'image': image_id,
                'bytes': source['virtual-size'],
                'seconds': round(time.monotonic() - began, 1)}

    @staticmethod
    def _check_shut_off(guest):
        state = guest.power_state()
        if state != 'shutoff':
            raise WriteError('Server %s is %s: a drive is written only while '
                             'the server is shut off.' % (guest.uuid, state))

    def _info(self, path, disk_format, force_share=False):
        args = ['info', '--output', 'json', '-f', disk_format] + (
            ['-U'] if force_share else [])
        return json.loads(self._qemu_img(*args, path, limits=INFO_LIMITS))

    def _qemu_img(self, *args, limits=(), timeout_s=60):
        result = self._run([*limits, QEMU_IMG, *args], capture_output=True,
                           text=True, timeout=timeout_s, check=False)
        if result.returncode:
            raise WriteError('qemu-img %s failed: %s' % (
                args[0], (result.stderr or result.stdout).strip()))
        return result.stdout
