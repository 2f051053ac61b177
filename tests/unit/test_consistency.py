"""The consistency checker of tools/faults: its verdict on counters, and
reading drives the way the mini-cloud stores them."""

import importlib.util
import os
import shutil
import subprocess
import tempfile

from glanceclient import exc as glance_exceptions
from keystoneauth1 import exceptions as ks_exceptions
import pytest

from snapshot_dashboard.orchestration import run
from tests.unit import fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'consistency', os.path.join(ROOT, 'tools', 'faults', 'consistency.py'))
consistency = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(consistency)


# -- the verdict --------------------------------------------------------------

@pytest.mark.parametrize('last, cut', [
    ({'/dev/vda': 7, '/dev/vdb': 7, '/dev/vdc': 7}, (7, '/dev/vdc')),
    ({'/dev/vda': 8, '/dev/vdb': 8, '/dev/vdc': 7}, (8, '/dev/vdb')),
    ({'/dev/vda': 8, '/dev/vdb': 7, '/dev/vdc': 7}, (8, '/dev/vda')),
])
def test_a_cut_at_one_point_of_the_sequence_is_consistent(last, cut):
    verdict = consistency.check_cut(last)
    assert verdict.consistent
    assert verdict.cut == cut
    assert verdict.order == ('/dev/vda', '/dev/vdb', '/dev/vdc')
    assert verdict.reason.startswith('consistent: every write up to round '
                                     '%d on %s' % (cut[0], cut[1][5:]))


@pytest.mark.parametrize('last, present, missing', [
    # Snapshots taken one by one in the guest's order: later drives newer.
    ({'/dev/vda': 10, '/dev/vdb': 15}, 'vdb holds round 15',
     'vda lacks round 11'),
    ({'/dev/vda': 10, '/dev/vdb': 10, '/dev/vdc': 11},
     'vdc holds round 11', 'vdb lacks round 11'),
    # In the reverse order: never increasing, but rounds apart.
    ({'/dev/vda': 15, '/dev/vdb': 12, '/dev/vdc': 10},
     'vda holds round 15', 'vdc lacks round 11'),
    ({'/dev/vda': 9, '/dev/vdb': 7}, 'vda holds round 9',
     'vdb lacks round 8'),
    # A step of one, then another: the first drive two rounds ahead.
    ({'/dev/vda': 9, '/dev/vdb': 8, '/dev/vdc': 7}, 'vda holds round 9',
     'vdc lacks round 8'),
])
def test_a_later_write_without_an_earlier_one_is_torn(last, present,
                                                      missing):
    verdict = consistency.check_cut(last)
    assert not verdict.consistent
    assert verdict.cut is None
    assert verdict.reason.startswith('torn: %s, yet %s' % (present, missing))
    assert verdict.spread == max(last.values()) - min(last.values())


def test_drives_are_checked_in_the_guests_order_not_the_callers():
    assert consistency.check_cut({'/dev/vdc': 10, '/dev/vda': 11}).consistent
    verdict = consistency.check_cut({'vdc': 11, 'vda': 10})
    assert not verdict.consistent
    assert verdict.order == ('vda', 'vdc')


def test_the_guest_writes_scsi_drives_before_virtio_ones():
    assert consistency.guest_order(['/dev/vda', '/dev/sdb', '/dev/sda']) == [
        '/dev/sda', '/dev/sdb', '/dev/vda']
    assert not consistency.check_cut({'/dev/vda': 5, '/dev/sda': 4}
                                     ).consistent


@pytest.mark.parametrize('last', [{'/dev/vda': 3}, {'/dev/vdc': 900}])
def test_one_drive_is_always_consistent(last):
    verdict = consistency.check_cut(last)
    assert verdict.consistent
    assert verdict.spread == 0


def test_a_drive_without_a_counter_is_left_out_and_named():
    verdict = consistency.check_cut({'/dev/vda': 12, '/dev/vdb': None,
                                     '/dev/vdc': 12})
    assert verdict.consistent
    assert verdict.order == ('/dev/vda', '/dev/vdc')
    assert verdict.unchecked == ('/dev/vdb',)
    assert verdict.reason.endswith('; no counter on vdb')


def test_the_drives_around_one_without_a_counter_are_still_checked():
    verdict = consistency.check_cut({'/dev/vda': 12, '/dev/vdb': None,
                                     '/dev/vdc': 14})
    assert not verdict.consistent
    assert verdict.reason.startswith('torn: vdc holds round 14, yet vda '
                                     'lacks round 13')


def test_no_counter_anywhere_is_nothing_to_check():
    verdict = consistency.check_cut({'/dev/vda': None})
    assert verdict.consistent
    assert verdict.order == ()
    assert verdict.reason.startswith('no drive holds a counter')


def test_a_drive_mounted_later_needs_no_earlier_rounds():
    """Its counter begins where it was first mounted (round 41 here)."""
    first = consistency.DriveSource('/dev/vda', snapshot_id='s1')
    later = consistency.DriveSource('/dev/vdb', snapshot_id='s2')
    readings = [
        consistency.DriveReading(first, tuple((n, n / 10) for n in
                                              range(1, 51))),
        consistency.DriveReading(later, tuple((n, n / 10) for n in
                                              range(41, 50))),
    ]
    verdict = consistency.check_readings(readings)
    assert verdict.consistent
    assert verdict.cut == (50, '/dev/vda')


# -- the counter file ---------------------------------------------------------

def test_a_counter_holds_every_boot_and_its_last_line_is_the_newest():
    data = b'1 5.10\n2 5.21\n3 5.32\n1 4.90\n2 5.01\n'
    lines, unreadable = consistency.parse_counter(data)
    assert lines == ((1, 5.1), (2, 5.21), (3, 5.32), (1, 4.9), (2, 5.01))
    assert unreadable == 0


@pytest.mark.parametrize('tail', [b'3 5.', b'\0\0\0\0\0\0', b'\0\0\0\n'])
def test_a_write_cut_short_is_left_out(tail):
    lines, unreadable = consistency.parse_counter(b'1 5.10\n2 5.21\n' + tail)
    assert lines == ((1, 5.1), (2, 5.21))
    assert unreadable == 1


def test_an_empty_counter_has_no_lines():
    assert consistency.parse_counter(b'') == ((), 0)


# -- reading a set's drives ---------------------------------------------------

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ('mke2fs', 'qemu-img', 'debugfs',
                                      'e2fsck', 'e2label')),
    reason='needs e2fsprogs and qemu-img')


def filesystem(path, counter, fs_type='ext2', label='', scratch=None):
    """A small filesystem image at ``path`` with ``counter`` as /counter
    (None: no file at all)."""
    content = scratch / ('content-' + path.name)
    content.mkdir()
    if counter is not None:
        (content / 'counter').write_bytes(counter)
    subprocess.run(['mke2fs', '-q', '-F', '-t', fs_type, '-L', label, '-d',
                    str(content), str(path), '8M'], check=True,
                   capture_output=True)
    return path


def counter(last, first=1):
    return b''.join(b'%d %d.%02d\n' % (n, 10 + n // 10, n % 10 * 10)
                    for n in range(first, last + 1))


@pytest.fixture
def image_backed_set(tmp_path):
    """A set of a server with root, ephemeral and two volumes, taken on the
    fake cloud with the agent copying the local drives."""
    cloud = fakes.FakeCloud()
    server = cloud.add_server(ephemeral_gb=1,
                              volumes=[('/dev/vdc', 1), ('/dev/vdd', 1)])
    agent = fakes.FakeAgent(cloud, copies=True)
    snapshot_set = run.create_snapshot_set(
        cloud, server, clock=fakes.FakeClock(cloud), wait=True,
        agent_locator=fakes.FakeAgents(agent), consistency='application')
    loop_dir = tmp_path / 'volumes'
    loop_dir.mkdir()
    return cloud, snapshot_set, loop_dir


def store(cloud, snapshot_set, loop_dir, tmp_path, contents):
    """Put each drive's filesystem where the mini-cloud keeps it: volume
    snapshots as raw files in the loop driver's folder, images in Glance
    as qcow2."""
    images = {}
    for drive in snapshot_set.drives:
        short = drive.name[5:]
        if drive.snapshot_id:
            filesystem(loop_dir / ('snapshot-%s.img' % drive.snapshot_id),
                       contents[short], label=short, scratch=tmp_path)
            continue
        raw = filesystem(tmp_path / (short + '.raw'), contents[short],
                         'ext4', label=short, scratch=tmp_path)
        qcow2 = tmp_path / (short + '.qcow2')
        subprocess.run(['qemu-img', 'convert', '-O', 'qcow2', str(raw),
                        str(qcow2)], check=True)
        images[drive.image_id] = qcow2.read_bytes()
    cloud.glance.images.data = lambda image_id: iter(
        [images[image_id][:4096], images[image_id][4096:]])


@needs_tools
def test_every_drive_of_a_set_is_read_from_where_the_cloud_keeps_it(
        image_backed_set, tmp_path, monkeypatch):
    cloud, snapshot_set, loop_dir = image_backed_set
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(scratch))
    store(cloud, snapshot_set, loop_dir, tmp_path, {
        'vda': counter(120), 'vdb': counter(120), 'vdc': counter(119),
        'vdd': counter(119, first=41)})

    verdict, readings = consistency.check_set(cloud, snapshot_set.id,
                                              str(loop_dir))

    assert [(r.device, str(r.source).split()[0], r.label, r.last_round)
            for r in readings] == [
        ('/dev/vda', 'image', 'vda', 120), ('/dev/vdb', 'image', 'vdb', 120),
        ('/dev/vdc', 'volume', 'vdc', 119),
        ('/dev/vdd', 'volume', 'vdd', 119)]
    assert readings[0].source.image_id == snapshot_set.id
    assert readings[3].lines[0] == (41, 14.1)
    assert verdict.consistent
    assert verdict.cut == (120, '/dev/vdb')
    assert list(scratch.iterdir()) == []


@needs_tools
def test_a_set_read_torn_is_reported_torn(image_backed_set, tmp_path):
    cloud, snapshot_set, loop_dir = image_backed_set
    store(cloud, snapshot_set, loop_dir, tmp_path, {
        'vda': counter(120), 'vdb': counter(120), 'vdc': counter(119),
        'vdd': counter(125)})
    verdict, _ = consistency.check_set(cloud, snapshot_set.id,
                                       str(loop_dir))
    assert not verdict.consistent
    assert verdict.reason.startswith('torn: vdd holds round 125, yet vdc '
                                     'lacks round 120')


@needs_tools
def test_drives_without_a_filesystem_or_a_counter_say_so(
        image_backed_set, tmp_path):
    cloud, snapshot_set, loop_dir = image_backed_set
    store(cloud, snapshot_set, loop_dir, tmp_path, {
        'vda': counter(120), 'vdb': None, 'vdc': counter(119) + b'120 2',
        'vdd': counter(3)})
    blank = next(d for d in snapshot_set.drives if d.name == '/dev/vdd')
    with open(loop_dir / ('snapshot-%s.img' % blank.snapshot_id), 'wb') as f:
        f.truncate(8 * 1024 ** 2)

    verdict, readings = consistency.check_set(cloud, snapshot_set.id,
                                              str(loop_dir))

    assert [(r.last_round, r.note) for r in readings] == [
        (120, None), (None, 'no /counter'),
        (119, '1 unreadable line(s) left out'),
        (None, 'no ext2/ext4 filesystem')]
    assert verdict.consistent
    assert verdict.unchecked == ('/dev/vdb', '/dev/vdd')


@needs_tools
def test_a_volume_snapshot_not_on_this_host_is_unreadable(
        image_backed_set, tmp_path):
    cloud, snapshot_set, loop_dir = image_backed_set
    cloud.glance.images.data = lambda image_id: iter([b''])
    with pytest.raises(consistency.DriveUnreadable, match='mini-cloud host'):
        consistency.check_set(cloud, snapshot_set.id, str(loop_dir))


def test_the_loop_dir_comes_from_the_mini_clouds_cinder_config(tmp_path):
    (tmp_path / 'etc' / 'cinder').mkdir(parents=True)
    (tmp_path / 'etc' / 'cinder' / 'cinder.conf').write_text(
        '[DEFAULT]\nenabled_backends = loop\n\n'
        '[loop]\nloop_dir = /srv/volumes\n')
    assert consistency.find_loop_dir(str(tmp_path)) == '/srv/volumes'


@needs_tools
def test_a_dropped_connection_is_tried_once_more(image_backed_set, tmp_path,
                                                 monkeypatch):
    cloud, snapshot_set, loop_dir = image_backed_set
    store(cloud, snapshot_set, loop_dir, tmp_path, {
        'vda': counter(9), 'vdb': counter(9), 'vdc': counter(9),
        'vdd': counter(9)})
    dropped = []

    def drop_first(api, name, error):
        call = getattr(api, name)

        def once_dropped(*args):
            if name not in dropped:
                dropped.append(name)
                raise error
            return call(*args)
        monkeypatch.setattr(api, name, once_dropped)

    drop_first(cloud.cinder.volume_snapshots, 'get',
               ks_exceptions.ConnectFailure('Connection reset by peer'))
    drop_first(cloud.glance.images, 'data',
               glance_exceptions.CommunicationError('Connection reset'))

    verdict, readings = consistency.check_set(cloud, snapshot_set.id,
                                              str(loop_dir))
    assert dropped == ['get', 'data']
    assert verdict.consistent
    assert [r.last_round for r in readings] == [9, 9, 9, 9]
