"""The life of a capture on the agent: copy, export in order, removal.

libvirt's test driver has no backup jobs, so the domain here is a stand-in
that answers ``backupBegin`` and ``jobStats`` as QEMU's backup job does and
writes the target files; the real job is the integration tests' part.
"""

import os
import threading
import time

import libvirt
import pytest

from snapshot_dashboard.agent import captures as captures_module
from snapshot_dashboard.agent import guests


class BackupDomain:
    """A domain whose backup job copies when ``finish`` is called."""

    def __init__(self, fail=False):
        self.fail = fail
        self.running = False
        self.done = threading.Event()
        self.aborted = False
        self.xml = None

    def XMLDesc(self, flags):  # noqa: N802 - libvirt's name
        return ('<domain><devices>'
                '<disk type="file" device="disk"><source file="/d/disk"/>'
                '<driver type="qcow2"/><target dev="vda"/></disk>'
                '<disk type="file" device="disk"><source file="/d/eph"/>'
                '<driver type="qcow2"/><target dev="vdb"/></disk>'
                '<disk type="block" device="disk"><source dev="/dev/sdx"/>'
                '<target dev="vdc"/></disk>'
                '</devices></domain>')

    def backupBegin(self, xml, checkpoint, flags):  # noqa: N802
        self.xml = xml
        self.running = True

    def finish(self, folder, devices):
        for device in devices:
            with open(os.path.join(folder, device + '.qcow2'), 'wb') as f:
                f.write(device.encode())
        self.running = False

    def jobStats(self, flags=0):  # noqa: N802
        if flags == libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED:
            return {'operation': libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP,
                    'type': 4 if self.fail else 3,
                    'errmsg': 'No space left on device'}
        if self.running:
            return {'operation': libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP,
                    'type': libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
                    'data_total': 100, 'data_processed': 40}
        return {'type': libvirt.VIR_DOMAIN_JOB_NONE}

    def abortJob(self):  # noqa: N802
        self.aborted = True
        self.running = False

    def blockInfo(self, device):  # noqa: N802
        return [1024, 0, 0]


class Guest:
    uuid = 'server-1'

    def __init__(self, domain, hypervisor=None):
        self.domain = domain
        self.hypervisor = hypervisor

    def owner_project(self):
        return 'project-1'

    def local_drives(self, domain_xml=None):
        return [{'device': 'vda', 'file': '/d/disk', 'format': 'qcow2',
                 'capturable': True, 'reason': None},
                {'device': 'vdb', 'file': '/d/eph', 'format': 'qcow2',
                 'capturable': True, 'reason': None}]


class Hypervisor:
    def __init__(self, guest):
        self._guest = guest

    def guest(self, uuid):
        return self._guest


def wait_for(condition, timeout_s=5):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.01)


@pytest.fixture
def captures(tmp_path):
    return captures_module.Captures(str(tmp_path), keep_s=30)


def test_the_backup_names_every_disk_and_copies_only_the_chosen(captures):
    domain = BackupDomain()
    capture = captures.begin(Guest(domain), ['vda'])
    assert 'name="vda" backup="yes"' in domain.xml
    assert 'name="vdb" backup="no"' in domain.xml
    assert 'name="vdc" backup="no"' in domain.xml
    assert os.path.join(capture.folder, 'vda.qcow2') in domain.xml
    assert capture.to_dict()['state'] == 'copying'


def export_root_and_ephemeral(captures, upload):
    """A capture of vda and vdb exported to image-root (named last: the
    set's own) and image-eph with ``upload``, its copy then finished."""
    domain = BackupDomain()
    capture = captures.begin(Guest(domain), ['vda', 'vdb'])
    captures.export(capture, {'vdb': 'image-eph', 'vda': 'image-root'},
                    upload)
    domain.finish(capture.folder, ['vda', 'vdb'])
    return capture


def test_export_uploads_at_once_and_ends_the_last_named_last(captures):
    # The set's own image is named last: its upload runs beside the
    # others but ends only once they have, so it turns active last.
    both_uploading = threading.Barrier(2, timeout=5)
    ended = []

    def upload(image, path, finish=None):
        data = open(path).read()
        both_uploading.wait()  # breaks unless both upload at once
        if image == 'image-eph':
            time.sleep(0.2)  # the root's file is sent first
        if finish is not None:
            finish()
        ended.append((image, data))
    capture = export_root_and_ephemeral(captures, upload)
    wait_for(lambda: capture.state == 'exported')
    assert ended == [('image-eph', 'vdb'), ('image-root', 'vda')]
    assert not os.path.exists(capture.folder)
    assert capture.progress['copied_bytes'] == capture.progress[
        'total_bytes']


def test_a_failed_upload_holds_back_the_last_and_removes_the_copies(
        captures):
    ended = []

    def upload(image, path, finish=None):
        if image == 'image-eph':
            raise OSError('Glance said 413')
        finish()
        ended.append(image)
    capture = export_root_and_ephemeral(captures, upload)
    wait_for(lambda: capture.state == 'failed')
    exports = capture.to_dict()['exports']
    assert exports['vdb']['state'] == 'failed'
    assert '413' in exports['vdb']['error']
    # The set's image never got its end of data: it does not turn active.
    assert exports['vda']['state'] == 'skipped'
    assert ended == []
    assert 'could not upload vdb' in capture.error
    assert not os.path.exists(capture.folder)


def test_a_set_image_held_too_long_is_uploaded_again_after_the_others(
        tmp_path):
    # The root's data is sent long before the ephemeral copy is in: its
    # upload is given up within hold_s (no idle request for a proxy to
    # cut) and made again once the ephemeral copy is in.
    captures = captures_module.Captures(str(tmp_path), keep_s=30,
                                        hold_s=0.1)
    attempts, ended = [], []

    def upload(image, path, finish=None):
        data = open(path).read()  # the file is there for each attempt
        attempts.append(image)
        if image == 'image-eph':
            time.sleep(0.5)
        if finish is not None:
            finish()
        ended.append((image, data))
    capture = export_root_and_ephemeral(captures, upload)
    wait_for(lambda: capture.state == 'exported')
    assert sorted(attempts) == ['image-eph', 'image-root', 'image-root']
    assert ended == [('image-eph', 'vdb'), ('image-root', 'vda')]
    assert capture.to_dict()['exports']['vda']['state'] == 'uploaded'
    assert not os.path.exists(capture.folder)


def test_a_last_upload_that_fails_early_still_waits_for_the_others(
        captures):

    def upload(image, path, finish=None):
        if image == 'image-root':
            raise OSError('Glance said 500')  # before its data is sent
        time.sleep(0.3)
    capture = export_root_and_ephemeral(captures, upload)
    wait_for(lambda: capture.state == 'failed')
    exports = capture.to_dict()['exports']
    # The capture ended only once the ephemeral copy's upload had.
    assert exports['vdb']['state'] == 'uploaded'
    assert exports['vda']['state'] == 'failed'
    assert 'could not upload vda' in capture.error


def test_a_failed_copy_is_reported_and_removed(captures):
    domain = BackupDomain(fail=True)
    capture = captures.begin(Guest(domain), ['vda'])
    domain.finish(capture.folder, ['vda'])
    wait_for(lambda: capture.state == 'failed')
    assert 'No space left' in capture.error
    assert not os.path.exists(capture.folder)


def test_a_copy_nobody_exports_is_removed_after_keep(tmp_path):
    now = [0.0]
    captures = captures_module.Captures(str(tmp_path), keep_s=10,
                                        clock=lambda: now[0])
    domain = BackupDomain()
    capture = captures.begin(Guest(domain), ['vda'])
    domain.finish(capture.folder, ['vda'])
    wait_for(lambda: capture.state == 'copied')
    assert os.path.exists(capture.folder)
    now[0] = 11
    wait_for(lambda: capture.state == 'deleted')
    assert not os.path.exists(capture.folder)


def test_delete_aborts_a_running_copy(captures):
    domain = BackupDomain()
    guest = Guest(domain)
    capture = captures.begin(guest, ['vda'])
    captures.delete(capture, Hypervisor(guest))
    assert domain.aborted
    assert capture.state == 'deleted'
    assert not os.path.exists(capture.folder)


def test_one_capture_per_server_at_a_time(captures):
    domain = BackupDomain()
    captures.begin(Guest(domain), ['vda'])
    with pytest.raises(captures_module.CaptureError) as raised:
        captures.begin(Guest(domain), ['vdb'])
    assert 'being captured already' in str(raised.value)


def test_export_of_a_drive_not_copied_is_refused(captures):
    capture = captures.begin(Guest(BackupDomain()), ['vda'])
    with pytest.raises(captures_module.CaptureError):
        captures.export(capture, {'vdb': 'image'}, lambda i, p: None)
    assert capture.exports == {}


def test_a_capture_records_the_owner_of_its_server(captures):
    capture = captures.begin(Guest(BackupDomain()), ['vda'])
    assert (capture.server, capture.project) == ('server-1', 'project-1')


def test_a_copy_nobody_exports_is_kept_ten_minutes_by_default(tmp_path):
    assert captures_module.Captures(str(tmp_path)).keep_s == 600


class RestartedDomain(BackupDomain):
    """The domain as seen through a connection libvirtd dropped: every call
    fails; the job goes on in QEMU."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def jobStats(self, flags=0):  # noqa: N802
        raise libvirt.libvirtError('End of file while reading data')


class LiveAgain:
    """Hypervisor.guest after libvirtd came back: the same job."""

    def __init__(self, domain):
        self.domain = domain
        self.lookups = 0

    def guest(self, uuid):
        self.lookups += 1
        return Guest(self.domain)


def test_the_copy_is_followed_through_a_libvirtd_restart(captures):
    live = BackupDomain()
    live.running = True  # the job QEMU runs, that the old connection began
    hypervisor = LiveAgain(live)
    capture = captures.begin(Guest(RestartedDomain(live), hypervisor),
                             ['vda'])
    uploaded = []
    captures.export(capture, {'vda': 'image-root'},
                    lambda image, path, finish=None: uploaded.append(image))
    live.finish(capture.folder, ['vda'])
    wait_for(lambda: capture.state == 'exported')
    assert uploaded == ['image-root']
    assert hypervisor.lookups == 1


def test_a_copy_whose_end_a_restarted_libvirtd_lost_is_not_trusted(
        captures):
    class Forgetful(BackupDomain):
        def jobStats(self, flags=0):  # noqa: N802
            if flags == libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED:
                return {'type': libvirt.VIR_DOMAIN_JOB_NONE}
            return super().jobStats(flags)

    live = Forgetful()
    live.running = True
    capture = captures.begin(Guest(RestartedDomain(live), LiveAgain(live)),
                             ['vda'])
    live.finish(capture.folder, ['vda'])  # files there, maybe partial
    wait_for(lambda: capture.state == 'failed')
    assert 'restarted' in capture.error
    assert not os.path.exists(capture.folder)


def test_delete_removes_the_copies_while_libvirt_is_unreachable(captures):
    domain = BackupDomain()
    capture = captures.begin(Guest(domain), ['vda'])

    class Unreachable:
        def guest(self, uuid):
            raise guests.HypervisorUnavailable('libvirt is unreachable')

    captures.delete(capture, Unreachable())
    assert capture.state == 'deleted'
    assert not os.path.exists(capture.folder)


def test_the_held_copies_are_those_nobody_asked_to_export(tmp_path):
    now = [100.0]
    captures = captures_module.Captures(str(tmp_path), keep_s=600,
                                        clock=lambda: now[0])
    copying = captures.begin(Guest(BackupDomain()), ['vda'], run='run-1')
    other = Guest(BackupDomain())
    other.uuid = 'server-2'
    exporting = captures.begin(other, ['vda'], run='run-2')
    captures.export(exporting, {'vda': 'image-1'}, lambda i, p: None)
    now[0] = 130.0
    held = captures.held()
    assert [(c.id, c.run, age) for c, age in held] == [
        (copying.id, 'run-1', 30.0)]
