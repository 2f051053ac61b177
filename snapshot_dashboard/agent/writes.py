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
import subprocess
import threading
import time
import uuid

LOG = logging.getLogger(__name__)

QEMU_IMG = 'qemu-img'
WRITE_TIMEOUT_S = 3600
FORMATS = ('qcow2', 'raw')


class WriteError(Exception):
    status = 409


class Writes:
    """One write at a time per server."""

    def __init__(self, work_dir, run=subprocess.run):
        self.work_dir = work_dir
        self._run = run
        self._busy = set()
        self._lock = threading.Lock()

    def write(self, guest, device, image_id, download):
        """Write image ``image_id`` into the local drive ``device`` of the
        shut-off ``guest``. ``download(image_id, path)`` fetches it and
        returns its Glance ``disk_format``: the format it is read as,
        never one guessed from its bytes (a raw image can look like a
        qcow2 naming a host file as its backing file). Returns what was
        written."""
        drive = {d['device']: d for d in guest.local_drives()}.get(device)
        if drive is None:
            raise WriteError('Server %s has no local drive %s.'
                             % (guest.uuid, device))
        if drive['format'] not in FORMATS:
            raise WriteError('Drive %s of server %s is %s: only qcow2 and '
                             'raw drives can be written.'
                             % (device, guest.uuid, drive['format']))
        with self._lock:
            if guest.uuid in self._busy:
                raise WriteError('A drive of server %s is being written.'
                                 % guest.uuid)
            self._busy.add(guest.uuid)
        path = os.path.join(self.work_dir, 'write-%s' % uuid.uuid4())
        began = time.monotonic()
        try:
            # Checked here, after the lock: a start while we download is
            # refused by QEMU's lock once qemu-img holds the file.
            self._check_shut_off(guest)
            os.makedirs(self.work_dir, mode=0o700, exist_ok=True)
            disk_format = download(image_id, path)
            if disk_format not in FORMATS:
                raise WriteError('Image %s is %s: only %s images can be '
                                 'written.' % (image_id, disk_format,
                                               ' and '.join(FORMATS)))
            source = self._info(path, disk_format)
            if source.get('backing-filename') or source.get(
                    'format-specific', {}).get('data', {}).get('data-file'):
                raise WriteError('Image %s refers to other files: it cannot '
                                 'be written.' % image_id)
            target = self._info(drive['file'], drive['format'],
                                force_share=True)
            if source['virtual-size'] > target['virtual-size']:
                raise WriteError(
                    'Image %s (%d bytes) is larger than drive %s of server '
                    '%s (%d bytes).' % (image_id, source['virtual-size'],
                                        device, guest.uuid,
                                        target['virtual-size']))
            self._check_shut_off(guest)
            self._qemu_img('convert', '-n', '-f', disk_format,
                           '-O', drive['format'], path, drive['file'])
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
        return json.loads(self._qemu_img(*args, path))

    def _qemu_img(self, *args):
        result = self._run([QEMU_IMG, *args], capture_output=True, text=True,
                           timeout=WRITE_TIMEOUT_S, check=False)
        if result.returncode:
            raise WriteError('qemu-img %s failed: %s' % (
                args[0], (result.stderr or result.stdout).strip()))
        return result.stdout
