"""The agent's state directory: the lease file and the lock."""

import json
import os

from snapshot_dashboard.agent import state


def record(lease_id='lease-1', server='server-1', kind='pause'):
    return {'id': lease_id, 'server': server, 'kind': kind, 'budget_s': 30,
            'taken_at': 1000.0, 'expires_at': 1030.0}


def test_leases_written_are_what_the_next_agent_inherits(tmp_path):
    lease_file = state.LeaseFile(str(tmp_path))
    assert lease_file.inherited == []
    lease_file.add(record('lease-1'))
    lease_file.add(record('lease-2', server='server-2', kind='freeze'))
    lease_file.remove('lease-1')
    assert state.LeaseFile(str(tmp_path)).inherited == [
        record('lease-2', server='server-2', kind='freeze')]


def test_the_lease_file_is_replaced_whole_after_an_fsync(tmp_path,
                                                         monkeypatch):
    steps = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd):
        steps.append(('fsync', os.readlink('/proc/self/fd/%d' % fd)))
        fsync(fd)

    def recorded_replace(source, target):
        steps.append(('replace', source, target))
        replace(source, target)

    monkeypatch.setattr(os, 'fsync', recorded_fsync)
    monkeypatch.setattr(os, 'replace', recorded_replace)
    lease_file = state.LeaseFile(str(tmp_path))
    lease_file.add(record())
    path = str(tmp_path / state.LEASES_FILE)
    # Data on disk before the rename, the rename on disk before returning.
    assert steps == [('fsync', path + '.tmp'),
                     ('replace', path + '.tmp', path),
                     ('fsync', str(tmp_path))]
    assert os.listdir(tmp_path) == [state.LEASES_FILE]


def test_an_unreadable_lease_file_is_kept_aside_and_ignored(tmp_path):
    (tmp_path / state.LEASES_FILE).write_text('{"leases": [')
    lease_file = state.LeaseFile(str(tmp_path))
    assert lease_file.inherited == []
    aside, = [name for name in os.listdir(tmp_path)
              if name.startswith(state.LEASES_FILE + '.unreadable-')]
    assert (tmp_path / aside).read_text() == '{"leases": ['


def test_a_record_that_names_no_guest_or_kind_is_ignored(tmp_path):
    (tmp_path / state.LEASES_FILE).write_text(json.dumps({'leases': [
        record(), dict(record('lease-2'), kind='reboot'),
        dict(record('lease-3'), server=None), 'lease-4',
        dict(record('lease-5'), taken_at='yesterday')]}))
    assert state.LeaseFile(str(tmp_path)).inherited == [record()]


def test_a_second_agent_cannot_take_the_lock(tmp_path):
    first = state.HostLock(str(tmp_path / 'state'))
    assert first.acquire()
    second = state.HostLock(str(tmp_path / 'state'))
    assert not second.acquire()
    assert second.holder == str(os.getpid())
    first.release()
    assert second.acquire()
    second.release()
