"""Captures: point-in-time copies of a guest's local drives.

A capture is one libvirt backup job in push mode: ``backupBegin`` returns
once QEMU has fixed the point in time (copy-before-write from then on), in
milliseconds, so it fits inside a freeze; QEMU then copies the drives into
qcow2 files under ``capture_dir`` in the background. An export uploads
every copy at once to a Glance image the caller created, with the caller's
own token, the last named ending its upload only once the others are in;
the copies are then removed. A copy nobody exports within ``keep_s`` is removed
too: a caller that vanished leaves nothing behind on the compute node.
"""

import dataclasses
import logging
import os
import shutil
import threading
import time
import uuid
from xml.etree import ElementTree

import libvirt

from snapshot_dashboard.agent import guests

LOG = logging.getLogger(__name__)

COPYING = 'copying'
COPIED = 'copied'
EXPORTING = 'exporting'
EXPORTED = 'exported'
FAILED = 'failed'
DELETED = 'deleted'
ENDED = frozenset({EXPORTED, FAILED, DELETED})

PENDING = 'pending'
UPLOADING = 'uploading'
UPLOADED = 'uploaded'
SKIPPED = 'skipped'

FORMAT = 'qcow2'
CHUNK = 1024 * 1024
POLL_S = 0.05
# How long the set's image, all its data sent, may wait for the other
# copies before it ends its upload: well under the idle timeouts in front
# of Glance (its own client_socket_timeout is 900 s, proxies often cut at
# 60 s). Past it the upload is given up (Glance queues the image again)
# and made again once the others are in: never slower than one after the
# other.
HOLD_S = 30
# libvirt's job types once a job has ended (jobStats(COMPLETED)['type']).
JOB_COMPLETED = getattr(libvirt, 'VIR_DOMAIN_JOB_COMPLETED', 3)
BACKUP = libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP


class CaptureError(Exception):
    status = 409


class CaptureNotFound(CaptureError):
    status = 404


class UploadHeldBack(Exception):
    """The last upload is not ended: another copy's upload failed, or
    took longer than the hold."""


@dataclasses.dataclass
class Capture:
    id: str
    server: str
    folder: str
    drives: list  # {'device', 'file', 'format', 'source'}
    lease: str | None
    began_ms: float
    state: str = COPYING
    error: str | None = None
    progress: dict = dataclasses.field(default_factory=dict)
    exports: dict = dataclasses.field(default_factory=dict)
    ended_at: float | None = None
    # upload(image_id, file, finish=None), given by the export: ``finish``
    # is called once the file is sent, before the upload ends.
    upload: object = None
    # The owner project of the server when the capture was made (Nova's
    # metadata): who may show, export or delete it, without asking libvirt.
    project: str | None = None
    # The run that asked for it (``properties.RUN`` of the run's volume
    # snapshots and images): what the worker's reaper goes by.
    run: str | None = None
    made_at: float = 0.0  # Captures.clock() when the capture was asked for

    def to_dict(self):
        return {'id': self.id, 'server': self.server, 'state': self.state,
                'lease': self.lease, 'run': self.run,
                'began_ms': round(self.began_ms, 1),
                'error': self.error, 'progress': dict(self.progress),
                'drives': [{'device': d['device'], 'format': d['format'],
                            'virtual_size': d.get('virtual_size')}
                           for d in self.drives],
                'exports': {device: dict(export) for device, export
                            in self.exports.items()}}


def backup_xml(all_targets, chosen, folder):
    """The push-mode backup of ``chosen`` (target devs) into ``folder``;
    every other disk of the domain is named and left out."""
    root = ElementTree.Element('domainbackup', mode='push')
    disks = ElementTree.SubElement(root, 'disks')
    for dev in all_targets:
        if dev not in chosen:
            ElementTree.SubElement(disks, 'disk', name=dev, backup='no')
            continue
        disk = ElementTree.SubElement(disks, 'disk', name=dev, backup='yes',
                                      type='file')
        ElementTree.SubElement(disk, 'target',
                               file=os.path.join(folder, dev + '.' + FORMAT))
        ElementTree.SubElement(disk, 'driver', type=FORMAT)
    return ElementTree.tostring(root, encoding='unicode')


def disk_targets(domain_xml):
    xml = ElementTree.fromstring(domain_xml)  # noqa: S314
    return [t.get('dev') for t in xml.findall('./devices/disk/target')]


class Captures:
    """The captures of this agent; one backup job per server at a time."""

    def __init__(self, capture_dir, keep_s=600, clock=time.monotonic,
                 hold_s=HOLD_S):
        self.capture_dir = capture_dir
        self.keep_s = keep_s
        self.clock = clock
        self.hold_s = hold_s
        self._captures = {}
        self._lock = threading.Lock()

    def _busy(self, server):
        return any(c.server == server and c.state in (COPYING, EXPORTING)
                   for c in self._captures.values())

    def begin(self, guest, devices, run=None):
        """Start copying ``devices`` (target devs such as ``vda``) of the
        guest as they are now, for ``run``. Returns the Capture."""
        xml = guest.domain.XMLDesc(0)
        drives = {d['device']: d for d in guest.local_drives(xml)}
        unknown = sorted(set(devices) - set(drives))
        if not devices or unknown:
            raise CaptureError(
                'Server %s has no local drive %s; it has %s.'
                % (guest.uuid, ', '.join(unknown) or '(none asked)',
                   ', '.join(sorted(drives)) or 'none'))
        refused = {d: drives[d]['reason'] for d in devices
                   if not drives[d]['capturable']}
        if refused:
            raise CaptureError('Cannot capture %s.' % '; '.join(
                '%s: %s' % item for item in sorted(refused.items())))
        with self._lock:
            if self._busy(guest.uuid):
                raise CaptureError('Server %s is being captured already.'
                                   % guest.uuid)
            capture_id = str(uuid.uuid4())
            folder = os.path.join(self.capture_dir, capture_id)
            os.makedirs(folder, mode=0o700)
            capture = Capture(
                id=capture_id, server=guest.uuid, folder=folder,
                drives=[dict(drives[d], source=drives[d]['file'],
                             file=os.path.join(folder, d + '.' + FORMAT),
                             format=FORMAT) for d in devices],
                lease=None, began_ms=0.0, project=guest.owner_project(),
                run=run, made_at=self.clock())
            self._captures[capture_id] = capture
        backup = backup_xml(disk_targets(xml), set(devices), folder)
        started = time.monotonic()
        try:
            guest.domain.backupBegin(backup, None, 0)
        except libvirt.libvirtError as e:
            self._end(capture, FAILED, 'libvirt refused the copy: %s' % e)
            raise CaptureError('Could not capture server %s: %s'
                               % (guest.uuid, e)) from e
        capture.began_ms = (time.monotonic() - started) * 1000
        LOG.info('Capture %s of server %s (%s) began in %.1f ms', capture.id,
                 guest.uuid, ', '.join(devices), capture.began_ms)
        threading.Thread(target=self._follow, args=(capture, guest),
                         daemon=True, name='capture-%s' % capture.id).start()
        return capture

    def get(self, server, capture_id):
        with self._lock:
            capture = self._captures.get(capture_id)
        if capture is None or capture.server != server:
            raise CaptureNotFound('No capture %s of server %s.'
                                  % (capture_id, server))
        return capture

    def held(self):
        """The captures that still hold copies nobody asked to export
        (copying or copied), each with its age in seconds."""
        now = self.clock()
        with self._lock:
            return [(capture, now - capture.made_at)
                    for capture in self._captures.values()
                    if capture.state in (COPYING, COPIED)
                    and not capture.exports]

    def export(self, capture, images, upload):
        """Upload every copy to its image (``images``: device -> Glance
        image id) at once, with ``upload(image_id, file, finish)``. The
        last in ``images`` (the set's own image) ends its upload only once
        the others ended: its image turns active last, and never if
        another upload failed. Copies not named are dropped."""
        unknown = set(images) - {d['device'] for d in capture.drives}
        if unknown:
            raise CaptureError('Capture %s holds no %s.'
                               % (capture.id, ', '.join(sorted(unknown))))
        with self._lock:
            if capture.exports or capture.state not in (COPYING, COPIED):
                raise CaptureError('Capture %s is %s; it cannot be exported.'
                                   % (capture.id, capture.exports and
                                      'being exported' or capture.state))
            capture.exports = {device: {'image': image, 'state': PENDING}
                               for device, image in images.items()}
            capture.upload = upload
        return capture

    def delete(self, capture, hypervisor):
        """Abort the copy if it still runs and remove the files. The files
        are the agent's own: they go even when libvirt cannot be reached."""
        copying = capture.state == COPYING
        capture.state = DELETED  # the follower stops at its next look
        if copying:
            _abort_job(hypervisor, capture.server)
        self._end(capture, DELETED, None)
        return capture

    def _end(self, capture, state, error):
        # The files go first: a capture that shows ended holds nothing.
        shutil.rmtree(capture.folder, ignore_errors=True)
        if error and not capture.error:
            capture.error = error
        capture.ended_at = self.clock()
        if capture.state != DELETED:
            capture.state = state
        with self._lock:
            for old_id, old in list(self._captures.items()):
                if old.ended_at and self.clock() - old.ended_at > self.keep_s:
                    del self._captures[old_id]

    def _follow(self, capture, guest):
        """Wait for the copy, then for an export (or ``keep_s``), upload,
        remove the copies."""
        job = _Job(capture.server, guest)
        for drive in capture.drives:
            drive['virtual_size'] = _virtual_size(guest.domain, drive)
        try:
            self._wait_for_copy(capture, job)
        except Exception as e:
            LOG.exception('Capture %s failed', capture.id)
            self._end(capture, FAILED, str(e))
            return
        deadline = self.clock() + self.keep_s
        while not capture.exports and capture.state == COPIED:
            if self.clock() >= deadline:
                LOG.warning('Capture %s was never exported; removed',
                            capture.id)
                self._end(capture, DELETED, 'not exported within %s s'
                          % self.keep_s)
                return
            time.sleep(POLL_S)
        if capture.state != COPIED:
            return
        capture.state = EXPORTING
        *others, last = list(capture.exports)
        threads = [threading.Thread(target=self._upload,
                                    args=(capture, device), daemon=True)
                   for device in others]
        for thread in threads:
            thread.start()

        def all_in():
            return capture.state != DELETED and all(
                capture.exports[d]['state'] == UPLOADED for d in others)

        def finish():
            deadline = time.monotonic() + self.hold_s
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if any(thread.is_alive() for thread in threads) or not all_in():
                raise UploadHeldBack()
        try:
            self._upload(capture, last, finish, remove=False)
        finally:
            # Whatever became of the last, the others end before the
            # capture does.
            for thread in threads:
                thread.join()
        if capture.exports[last]['state'] == SKIPPED and all_in():
            LOG.info('Capture %s: %s uploaded again once the other copies '
                     'were in', capture.id, last)
            self._upload(capture, last, remove=False)
        failed = [d for d, e in capture.exports.items()
                  if e['state'] == FAILED]
        self._end(capture, FAILED if failed else EXPORTED,
                  'could not upload %s' % ', '.join(failed)
                  if failed else None)

    def _upload(self, capture, device, finish=None, remove=True):
        export = capture.exports[device]
        drive = next(d for d in capture.drives if d['device'] == device)
        if capture.state == DELETED:
            export['state'] = SKIPPED
            return
        export['state'] = UPLOADING
        try:
            capture.upload(export['image'], drive['file'], finish=finish)
        except UploadHeldBack:
            export['state'] = SKIPPED
        except Exception as e:
            LOG.exception('Export of %s of capture %s to image %s failed',
                          device, capture.id, export['image'])
            export.update(state=FAILED, error=str(e))
        else:
            export['state'] = UPLOADED
        finally:
            if remove:  # else the capture's end removes it
                _remove(drive['file'])

    def _wait_for_copy(self, capture, job):
        while True:
            if capture.state == DELETED:
                raise CaptureError('deleted while copying')
            stats = job.stats()
            if (stats.get('operation') == BACKUP and stats.get(
                    'type', libvirt.VIR_DOMAIN_JOB_NONE)
                    != libvirt.VIR_DOMAIN_JOB_NONE):
                total = stats.get('data_total') or 0
                capture.progress = {
                    'total_bytes': total,
                    'copied_bytes': stats.get('data_processed') or 0}
                time.sleep(POLL_S)
                continue
            break
        done = job.stats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if (done.get('operation') == BACKUP
                and done.get('type') != JOB_COMPLETED):
            raise CaptureError(done.get('errmsg') or 'the copy failed')
        if job.reconnected and done.get('operation') != BACKUP:
            # A libvirtd that restarted may not know how the copy ended:
            # files that exist could be partial.
            raise CaptureError('the end of the copy was not seen (libvirtd '
                               'restarted)')
        missing = [d['device'] for d in capture.drives
                   if not os.path.exists(d['file'])]
        if missing:
            raise CaptureError('the copy of %s is missing'
                               % ', '.join(missing))
        total = capture.progress.get('total_bytes') or sum(
            d.get('virtual_size') or 0 for d in capture.drives)
        capture.progress = {'total_bytes': total, 'copied_bytes': total}
        capture.state = COPIED
        LOG.info('Capture %s copied', capture.id)

    def forget_leftovers(self, hypervisor):
        """At start: abort copies into ``capture_dir`` that an earlier agent
        began, and remove every file it left there."""
        for guest in hypervisor.guests():
            try:
                xml = guest.domain.backupGetXMLDesc(0)
            except libvirt.libvirtError:
                continue
            if self.capture_dir in xml:
                LOG.warning('Aborting a copy of server %s left by an earlier '
                            'agent', guest.uuid)
                _abort_job(hypervisor, guest.uuid)
        if os.path.isdir(self.capture_dir):
            for name in os.listdir(self.capture_dir):
                LOG.warning('Removing capture %s left by an earlier agent',
                            name)
                shutil.rmtree(os.path.join(self.capture_dir, name),
                              ignore_errors=True)
        os.makedirs(self.capture_dir, mode=0o700, exist_ok=True)


class _Job:
    """The backup job of a server, followed through its domain; a libvirt
    connection lost under it (libvirtd restarted: the job goes on in QEMU
    and libvirtd takes it back) is replaced by looking the guest up again
    (``Hypervisor.guest`` waits for libvirtd a bounded time)."""

    def __init__(self, server, guest):
        self.server = server
        self.domain = guest.domain
        self.hypervisor = getattr(guest, 'hypervisor', None)
        self.reconnected = False

    def stats(self, flags=0):
        try:
            return self.domain.jobStats(flags)
        except libvirt.libvirtError as e:
            if self.hypervisor is None:
                raise
            LOG.warning('Following the copy of server %s: %s; looking it '
                        'up again', self.server, e)
        self.domain = self.hypervisor.guest(self.server).domain
        self.reconnected = True
        return self.domain.jobStats(flags)


def _abort_job(hypervisor, server):
    try:
        hypervisor.guest(server).domain.abortJob()
    except libvirt.libvirtError as e:
        LOG.info('No copy to abort on server %s: %s', server, e)
    except guests.GuestNotFound:
        LOG.info('Server %s is gone: no copy to abort', server)
    except guests.GuestError as e:
        # The copy's files are removed all the same; a job left running
        # writes into removed files until it ends, or until the next start
        # of the agent aborts it (forget_leftovers).
        LOG.warning('Could not abort the copy of server %s: %s', server, e)


def _virtual_size(domain, drive):
    try:
        return domain.blockInfo(drive['device'])[0]
    except libvirt.libvirtError:
        return None


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
