"""Is a snapshot set a consistent cut? The test guest's counters say.

    .venv/bin/python tools/faults/consistency.py <set-id>
        [--cloud minicloud-demo] [--clouds .state/minicloud/clouds.yaml]

The test guest (tools/guest/init) writes round n to every mounted drive in
the order of ``/mnt/*`` -- ``<n> <uptime>`` appended to ``/counter``, fsync
after each drive -- every 100 ms: one sequence of writes (n, drive) across
drives, each begun only once the one before it was on disk. A set is a
consistent cut when, for some point of that sequence, each drive holds
exactly its writes up to that point: then the last rounds, in the guest's
drive order, never increase and the first is at most one more than the
last. ``check_cut`` decides that from the last rounds alone.

The drives are read on the mini-cloud's host: a volume snapshot is the
Cinder loop driver's file in ``loop_dir`` (from the mini-cloud's
cinder.conf), an image (a root or ephemeral copy) is downloaded from
Glance with the caller's credentials. Each is made a private raw copy
(qemu-img), its ext4 journal replayed (e2fsck), and ``/counter`` read with
debugfs. The CLI prints each drive's last round and the verdict, and exits
0 for a consistent cut, 1 for a torn one, 2 if a drive cannot be read.

The guest names its drives itself; they are taken here to be the names
Nova gives them (``/dev/vdb``), which holds for drives attached in order.
"""

import argparse
import concurrent.futures
import configparser
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from glanceclient import exc as glance_exceptions
from keystoneauth1 import exceptions as ks_exceptions
import openstack.config

from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import sets

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STATE = os.path.join(REPO, '.state', 'minicloud')
# Cinder's snapshot_name_template; the loop driver adds '.img'.
SNAPSHOT_FILE = 'snapshot-%s.img'
COUNTER_LINE = re.compile(rb'(\d+) (\d+(?:\.\d+)?)')
READERS = 8
# The mini-cloud's APIs (gunicorn gthread workers) now and then reset a
# keep-alive connection as a request arrives on it.
DROPPED = (ks_exceptions.ConnectFailure, glance_exceptions.CommunicationError)


class DriveUnreadable(Exception):
    """A drive's content could not be had, so its counter is unknown."""


# -- the verdict --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether the last rounds of a set's drives form a consistent cut.

    ``order`` names the drives checked, in the guest's order; ``last`` maps
    every drive given to its last round (None: no counter); ``cut`` is the
    last write inside a consistent cut as (round, drive), None if torn;
    ``unchecked`` names the drives without a counter; ``spread`` is the
    highest last round minus the lowest.
    """

    consistent: bool
    reason: str
    order: tuple
    last: dict
    cut: tuple | None
    unchecked: tuple
    spread: int


def _short(device):
    return device.rsplit('/', 1)[-1]


def guest_order(devices):
    """``devices`` (``/dev/vdb`` or ``vdb``) as the guest writes them: the
    order of ``/mnt/*``, sorted by name."""
    return sorted(devices, key=_short)


def check_cut(last_rounds):
    """The Verdict on ``last_rounds``: drive -> its last round, or None for
    a drive with no counter.

    A drive with no counter is left out: it may not have been mounted yet
    when the cut was made (a drive attached later starts at the round it
    was first mounted), so nothing can be said of it. With one drive or
    none left, the cut is consistent.
    """
    last = dict(last_rounds)
    unchecked = tuple(d for d in guest_order(last) if last[d] is None)
    order = tuple(d for d in guest_order(last) if last[d] is not None)
    rounds = [last[d] for d in order]
    spread = max(rounds) - min(rounds) if rounds else 0
    shown = ', '.join('%s %d' % (_short(d), last[d]) for d in order)

    def verdict(consistent, reason, cut=None):
        if unchecked:
            reason += '; no counter on %s' % ', '.join(
                _short(d) for d in unchecked)
        return Verdict(consistent, reason, order, last, cut, unchecked,
                       spread)

    def torn(present, missing):
        return verdict(False, (
            'torn: %s holds round %d, yet %s lacks round %d, which the '
            'guest wrote before it (last rounds %s)' % (
                _short(present), last[present], _short(missing),
                last[missing] + 1, shown)))

    if not order:
        return verdict(True, 'no drive holds a counter: nothing to check')
    for earlier, later in zip(order, order[1:], strict=False):
        if last[later] > last[earlier]:
            return torn(later, earlier)
    first, final = order[0], order[-1]
    if last[first] - last[final] > 1:
        return torn(first, final)
    top = last[first]
    cut_drive = [d for d in order if last[d] == top][-1]
    return verdict(True, 'consistent: every write up to round %d on %s is '
                   'in, none after it (last rounds %s)' % (
                       top, _short(cut_drive), shown), (top, cut_drive))


# -- reading the drives -------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DriveSource:
    """Where a drive of a set is: a volume snapshot or a Glance image."""

    device: str
    snapshot_id: str | None = None
    image_id: str | None = None

    def __str__(self):
        if self.snapshot_id:
            return 'volume snapshot %s' % self.snapshot_id
        return 'image %s' % self.image_id


@dataclasses.dataclass(frozen=True)
class DriveReading:
    """What a drive holds: its ``/counter`` as (round, uptime) lines, oldest
    first (empty with a ``note`` saying why); ``label`` is its filesystem's
    label (the guest labels a volume it formats with its own name);
    ``read_s`` how long reading it took."""

    source: DriveSource
    lines: tuple
    label: str | None = None
    note: str | None = None
    read_s: float = 0.0

    @property
    def device(self):
        return self.source.device

    @property
    def last_round(self):
        return self.lines[-1][0] if self.lines else None


def parse_counter(data):
    """The (round, uptime) lines of a counter file's bytes, and how many
    lines were unreadable (a crash copy can end inside a write)."""
    *lines, tail = data.split(b'\n')
    parsed, unreadable = [], int(bool(tail))
    for line in lines:
        match = COUNTER_LINE.fullmatch(line)
        if match:
            parsed.append((int(match[1]), float(match[2])))
        else:
            unreadable += 1
    return tuple(parsed), unreadable


def _read(call, *args):
    """An API read, tried once more if its connection was dropped."""
    try:
        return call(*args)
    except DROPPED:
        return call(*args)


def set_sources(clients, set_id):
    """The drives of a set, as DriveSources; the set must be available."""
    snapshot_set = _read(functools.partial(sets.get_set, any_project=True),
                         clients, set_id)
    if snapshot_set.status != sets.AVAILABLE:
        raise DriveUnreadable('Set %s is %s, not available yet.'
                              % (set_id, snapshot_set.status))
    return [DriveSource(d.name, snapshot_id=d.snapshot_id,
                        image_id=None if d.snapshot_id else d.image_id)
            for d in snapshot_set.drives]


def find_loop_dir(state_dir=STATE):
    """Where the mini-cloud's Cinder loop driver keeps its files."""
    path = os.path.join(state_dir, 'etc', 'cinder', 'cinder.conf')
    config = configparser.ConfigParser(interpolation=None, strict=False)
    if not config.read(path):
        raise DriveUnreadable('No Cinder configuration at %s.' % path)
    for backend in config.get('DEFAULT', 'enabled_backends',
                              fallback='').split(','):
        found = config.get(backend.strip(), 'loop_dir', fallback=None)
        if found:
            return found
    raise DriveUnreadable('No loop_dir in %s.' % path)


def _run(*command):
    return subprocess.run(command, capture_output=True, check=False)


def _raw_of_snapshot(clients, source, loop_dir, raw):
    status = _read(clients.cinder.volume_snapshots.get,
                   source.snapshot_id).status
    if status != 'available':
        raise DriveUnreadable('%s is %s.' % (source, status))
    path = os.path.join(loop_dir, SNAPSHOT_FILE % source.snapshot_id)
    if not os.path.exists(path):
        raise DriveUnreadable('%s has no file %s: the checker reads volume '
                              'snapshots on the mini-cloud host.'
                              % (source, path))
    _convert(path, 'raw', raw)


def _raw_of_image(clients, source, raw):
    image = _read(clients.glance.images.get, source.image_id)
    if image['status'] != 'active':
        raise DriveUnreadable('%s is %s.' % (source, image['status']))
    download = raw + '.download'
    _read(_download, clients, source.image_id, download)
    # Glance's disk_format is not the data's (Nova labels a snapshot of an
    # ami image ami): ask qemu-img, and refuse a backing file.
    info = json.loads(_checked('qemu-img', 'info', '--output=json',
                               download))
    if info.get('backing-filename'):
        raise DriveUnreadable('%s has a backing file.' % source)
    _convert(download, info['format'], raw)
    os.unlink(download)


def _download(clients, image_id, path):
    with open(path, 'wb') as f:
        for chunk in clients.glance.images.data(image_id):
            f.write(chunk)


def _checked(*command):
    result = _run(*command)
    if result.returncode:
        raise DriveUnreadable('%s failed: %s' % (
            ' '.join(command[:2]), result.stderr.decode(errors='replace')))
    return result.stdout


def _convert(path, disk_format, raw):
    _checked('qemu-img', 'convert', '-f', disk_format, '-O', 'raw', path,
             raw)


def _counter_of_raw(source, raw, started):
    label = _run('e2label', raw)
    if label.returncode:
        return DriveReading(source, (), note='no ext2/ext4 filesystem',
                            read_s=time.monotonic() - started)
    # A crash copy of ext4 needs its journal replayed, on our copy only.
    if _run('e2fsck', '-E', 'journal_only', '-p', raw).returncode >= 4:
        raise DriveUnreadable('%s: e2fsck could not replay the journal.'
                              % source)
    out = _run('debugfs', '-R', 'cat /counter', raw)
    name = label.stdout.decode().strip() or None
    if b'File not found' in out.stderr:
        return DriveReading(source, (), name, 'no /counter',
                            time.monotonic() - started)
    lines, unreadable = parse_counter(out.stdout)
    note = ('%d unreadable line(s) left out' % unreadable if unreadable
            else None if lines else 'an empty /counter')
    return DriveReading(source, lines, name, note,
                        time.monotonic() - started)


def read_drive(clients, source, loop_dir, scratch):
    """The DriveReading of one drive, copied into the folder ``scratch``
    (removed again). Raises DriveUnreadable."""
    started = time.monotonic()
    raw = os.path.join(scratch, '%s-%s.raw' % (
        _short(source.device), source.snapshot_id or source.image_id))
    try:
        if source.snapshot_id:
            _raw_of_snapshot(clients, source, loop_dir, raw)
        else:
            _raw_of_image(clients, source, raw)
        return _counter_of_raw(source, raw, started)
    finally:
        for path in (raw, raw + '.download'):
            if os.path.exists(path):
                os.unlink(path)


def read_drives(clients, sources, loop_dir=None):
    """The DriveReadings of ``sources``, read in parallel, in the guest's
    order. ``loop_dir`` defaults to the mini-cloud's."""
    loop_dir = loop_dir or find_loop_dir()
    ordered = sorted(sources, key=lambda s: _short(s.device))
    with tempfile.TemporaryDirectory(prefix='consistency-') as scratch, \
            concurrent.futures.ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(
            lambda s: read_drive(clients, s, loop_dir, scratch), ordered))


def check_readings(readings):
    """The Verdict on the drives read."""
    return check_cut({r.device: r.last_round for r in readings})


def check_set(clients, set_id, loop_dir=None):
    """The Verdict on a set, and the DriveReadings it rests on."""
    readings = read_drives(clients, set_sources(clients, set_id), loop_dir)
    return check_readings(readings), readings


# -- the command --------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('set_id')
    parser.add_argument('--cloud', default='minicloud-demo')
    parser.add_argument('--clouds', default=os.path.join(STATE,
                                                         'clouds.yaml'))
    args = parser.parse_args()
    region = openstack.config.OpenStackConfig(
        config_files=[args.clouds]).get_one(args.cloud)
    clients = clients_module.Clients(region.get_session(),
                                     region_name=region.region_name)
    started = time.monotonic()
    try:
        verdict, readings = check_set(clients, args.set_id, find_loop_dir(
            os.path.dirname(os.path.abspath(args.clouds))))
    except (DriveUnreadable, errors.SnapshotSetError) as e:
        print(e, file=sys.stderr)
        return 2
    for r in readings:
        last = ('round %d at %.2f s' % r.lines[-1] if r.lines
                else 'no counter')
        print('%-9s %-52s label %-10s %s, %d lines, read in %.2f s%s' % (
            r.device, r.source, r.label or '-', last, len(r.lines),
            r.read_s, ' (%s)' % r.note if r.note else ''))
    print('read in %.2f s' % (time.monotonic() - started))
    print(verdict.reason)
    return 0 if verdict.consistent else 1


if __name__ == '__main__':
    sys.exit(main())
