"""The agent writing an image back into a guest's local drive, with the
real qemu-img on real image files (the guest is a stand-in: what libvirt
says of it is all the write asks); the route's authorization through the
handlers."""

import os
import subprocess
import threading

import pytest

from snapshot_dashboard.agent import writes
from tests.unit.test_agent import agent  # noqa: F401 - fixtures
from tests.unit.test_agent import call
from tests.unit.test_agent import conf  # noqa: F401
from tests.unit.test_agent import domain  # noqa: F401

MB = 1024 * 1024


def qemu_img(*args):
    return subprocess.run(['qemu-img', *args], check=True,
                          capture_output=True, text=True).stdout


def raw_with(path, blocks, size_mb=4):
    """A raw image of ``size_mb`` with ``blocks`` ({MB offset: bytes})."""
    with open(path, 'wb') as f:
        f.truncate(size_mb * MB)
        for offset, data in blocks.items():
            f.seek(offset * MB)
            f.write(data)
    return str(path)


def read_at(path, fmt, offset_mb, length, tmp_path):
    out = tmp_path / 'read.raw'
    qemu_img('convert', '-f', fmt, '-O', 'raw', path, str(out))
    with open(out, 'rb') as f:
        f.seek(offset_mb * MB)
        return f.read(length)


class Guest:
    uuid = 'server-1'

    def __init__(self, drive_file, fmt='qcow2', state='shutoff'):
        self.file = drive_file
        self.fmt = fmt
        self.state = state

    def power_state(self):
        return self.state

    def local_drives(self):
        return [{'device': 'vdb', 'file': self.file, 'format': self.fmt,
                 'capturable': False, 'reason': 'the server is shutoff'}]


@pytest.fixture
def drive(tmp_path):
    """Nova's ephemeral disk: a qcow2 overlay over a base holding data."""
    base = raw_with(tmp_path / 'base.raw', {0: b'BASE' * 256,
                                            2: b'BASE' * 256})
    overlay = str(tmp_path / 'disk.eph0')
    qemu_img('create', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay)
    return overlay


def downloading(source, disk_format):
    """Glance's download as the agent's downloader does it, refusing an
    image larger than it is told."""
    calls = []

    def download(image_id, path, max_bytes):
        calls.append((image_id, max_bytes))
        if os.path.getsize(source) > max_bytes:
            raise writes.WriteError('larger than the drive')
        with open(source, 'rb') as src, open(path, 'wb') as dst:
            dst.write(src.read())
        return disk_format
    download.calls = calls
    return download


def test_every_block_is_written_zeroes_included(tmp_path, drive):
    """What the image holds, and nothing of the drive before: a zero
    range of the image hides the base's data too."""
    image = tmp_path / 'copy.qcow2'
    qemu_img('convert', '-f', 'raw', '-O', 'qcow2', raw_with(
        tmp_path / 'copy.raw', {0: b'COPY' * 256}), str(image))
    written = writes.Writes(str(tmp_path / 'work')).write(
        Guest(drive), 'vdb', 'image-1', downloading(image, 'qcow2'))
    assert written['bytes'] == 4 * MB
    assert read_at(drive, 'qcow2', 0, 1024, tmp_path) == b'COPY' * 256
    assert read_at(drive, 'qcow2', 2, 1024, tmp_path) == bytes(1024)
    assert list((tmp_path / 'work').iterdir()) == []  # the download went


def a_copy(tmp_path):
    image = tmp_path / 'copy.qcow2'
    qemu_img('convert', '-f', 'raw', '-O', 'qcow2', raw_with(
        tmp_path / 'copy.raw', {0: b'COPY' * 256}), str(image))
    return str(image)


def test_what_may_be_fetched_is_bounded_by_the_drive(tmp_path, drive):
    download = downloading(a_copy(tmp_path), 'qcow2')
    big = raw_with(tmp_path / 'big.raw', {}, size_mb=80)
    with pytest.raises(writes.WriteError, match='larger than the drive'):
        writes.Writes(str(tmp_path / 'work')).write(
            Guest(drive), 'vdb', 'image-1', downloading(big, 'raw'))
    writes.Writes(str(tmp_path / 'work')).write(
        Guest(drive), 'vdb', 'image-1', download)
    assert download.calls == [('image-1', int(4 * MB * 1.1 + 64 * MB))]


def test_a_root_disk_is_never_written(tmp_path, drive):
    root = str(tmp_path / 'disk')
    os.rename(drive, root)
    download = downloading(root, 'qcow2')
    with pytest.raises(writes.WriteError, match='not an ephemeral disk'):
        writes.Writes(str(tmp_path / 'work')).write(
            Guest(root), 'vdb', 'image-1', download)
    assert download.calls == []


def test_writes_beyond_the_limit_are_refused_until_one_ends(tmp_path,
                                                             drive):
    """Past ``max_writes`` at a time, a write is a 503 that changes
    nothing."""
    started, release = threading.Event(), threading.Event()
    work = writes.Writes(str(tmp_path / 'work'), max_writes=1)

    def slow(image_id, path, max_bytes):
        started.set()
        release.wait(10)
        raise writes.WriteError('stopped')
    blocked = threading.Thread(target=lambda: pytest.raises(
        writes.WriteError, work.write, Guest(drive), 'vdb', 'a', slow))
    blocked.start()
    started.wait(10)
    other = Guest(drive)
    other.uuid = 'server-2'
    copy = a_copy(tmp_path)
    with pytest.raises(writes.WritesBusy) as busy:
        work.write(other, 'vdb', 'b', downloading(copy, 'qcow2'))
    assert busy.value.status == 503
    release.set()
    blocked.join(10)
    work.write(other, 'vdb', 'b', downloading(copy, 'qcow2'))


def test_a_running_guest_is_refused_and_nothing_is_fetched(tmp_path,
                                                           drive):
    download = downloading(drive, 'qcow2')
    with pytest.raises(writes.WriteError, match='is running: a drive is '
                       'written only while the server is shut off'):
        writes.Writes(str(tmp_path)).write(
            Guest(drive, state='running'), 'vdb', 'image-1', download)
    assert download.calls == []
    assert read_at(drive, 'qcow2', 0, 4, tmp_path) == b'BASE'


def test_an_image_larger_than_the_drive_is_refused(tmp_path, drive):
    big = raw_with(tmp_path / 'big.raw', {5: b'X'}, size_mb=8)
    with pytest.raises(writes.WriteError, match='is larger than drive vdb'):
        writes.Writes(str(tmp_path / 'work')).write(
            Guest(drive), 'vdb', 'image-1', downloading(big, 'raw'))
    assert read_at(drive, 'qcow2', 0, 4, tmp_path) == b'BASE'


def test_an_image_naming_another_file_is_refused(tmp_path, drive):
    """A qcow2 whose backing file is a file of the host: never read."""
    secret = raw_with(tmp_path / 'host-secret', {0: b'SECRET'})
    sly = str(tmp_path / 'sly.qcow2')
    qemu_img('create', '-f', 'qcow2', '-F', 'raw', '-b', secret, sly, '4M')
    with pytest.raises(writes.WriteError, match='refers to other files'):
        writes.Writes(str(tmp_path / 'work')).write(
            Guest(drive), 'vdb', 'image-1', downloading(sly, 'qcow2'))
    assert read_at(drive, 'qcow2', 0, 4, tmp_path) == b'BASE'


def test_a_raw_image_is_written_as_raw_whatever_its_bytes_look_like(
        tmp_path, drive):
    """Glance says raw: the bytes of a qcow2 header (naming a host file)
    are written as they are, never opened as a qcow2."""
    secret = raw_with(tmp_path / 'host-secret', {0: b'SECRET'})
    sly = str(tmp_path / 'sly.qcow2')
    qemu_img('create', '-f', 'qcow2', '-F', 'raw', '-b', secret, sly, '4M')
    with open(sly, 'rb') as f:
        header = f.read(4)
    writes.Writes(str(tmp_path / 'work')).write(
        Guest(drive), 'vdb', 'image-1', downloading(sly, 'raw'))
    assert read_at(drive, 'qcow2', 0, 4, tmp_path) == header == b'QFI\xfb'


def test_unknown_drive_and_format_are_refused(tmp_path, drive):
    with pytest.raises(writes.WriteError, match='has no local drive vdz'):
        writes.Writes(str(tmp_path)).write(
            Guest(drive), 'vdz', 'image-1', downloading(drive, 'qcow2'))
    with pytest.raises(writes.WriteError, match='Image image-1 is vmdk'):
        writes.Writes(str(tmp_path)).write(
            Guest(drive), 'vdb', 'image-1', downloading(drive, 'vmdk'))


def test_the_route_wants_the_servers_project_and_an_image_id(agent,  # noqa: F811
                                                             domain):  # noqa: F811
    path = '/v1/servers/%s/drives/vdb/write' % domain.UUIDString()
    status, body = call(agent, 'POST', path, {'image': 'x'})
    assert (status, body['message']) == (400, 'image must be a Glance '
                                         'image id.')
    image = {'image': '6f1c3c2e-7a7e-4b43-9d35-0d3a1e0f9b11'}
    status, _ = call(agent, 'POST', path, image, project='other')
    assert status == 403
    status, body = call(agent, 'POST', path, image, roles='reader')
    assert (status, body['message']) == (403, 'Writing a drive needs the '
                                         'member role.')
