"""The agent's leases: how long a guest may be held, whoever dies."""

import threading
import time

import pytest

from snapshot_dashboard.agent import leases
from snapshot_dashboard.agent import state
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import window as window_module


def wait_for(check, timeout_s=5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError('timed out')


class SteppedClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_budget_counts_from_before_the_hold():
    clock = SteppedClock()
    held = leases.Leases(clock=clock)
    try:
        def slow_freeze():
            clock.now += 3  # the guest agent took 3 s to freeze

        lease = held.take('server-1', 'freeze', 5, slow_freeze, lambda: None)
        # Released 5 s after the freeze was asked for, not 5 s after it
        # returned.
        assert lease.expires_at == 105.0
    finally:
        held.stop()


def test_a_vanished_caller_leaves_the_guest_held_under_a_second_longer():
    released = threading.Event()
    held = leases.Leases()
    try:
        window = window_module.AgentWindow(None, 'server-1', budget_s=0.2)
        lease = held.take('server-1', 'freeze', window.budget_s,
                          lambda: None, released.set)
        # Nobody releases it: the watchdog does, past the caller's budget
        # by the margin only.
        assert released.wait(timeout=5)
        ended = wait_for(lambda: (lambda e: e.released_at and e)(
            held.find(lease.id)))
        assert ended.released_by == leases.WATCHDOG
        assert 0.2 <= ended.released_at - ended.taken_at < 0.2 + 1
        assert agent_module.WATCHDOG_MARGIN_S < 1
    finally:
        held.stop()


def test_a_stopping_agent_takes_no_new_lease():
    held = leases.Leases()
    held.stop()
    touched = []
    try:
        held.take('server-1', 'freeze', 5, lambda: touched.append('hold'),
                  lambda: touched.append('release'))
    except leases.LeaseConflict as e:
        assert 'stopping' in str(e)
    else:
        raise AssertionError('a lease was taken by a stopped agent')
    assert touched == []


def test_a_hold_that_ends_while_the_agent_stops_is_released_at_once():
    held = leases.Leases()
    touched = []

    def hold_while_stopping():
        touched.append('hold')
        # stop() runs now, from another thread, while the freeze is asked.
        stopper = threading.Thread(target=held.stop)
        stopper.start()
        stopper.join()

    try:
        held.take('server-1', 'freeze', 5, hold_while_stopping,
                  lambda: touched.append('release'))
    except leases.LeaseConflict:
        pass
    else:
        raise AssertionError('a lease outlived the agent')
    assert touched == ['hold', 'release']
    assert held.active('server-1') is None


def recorded(state_dir):
    """The leases on disk, as a new agent would find them."""
    return state.LeaseFile(str(state_dir)).inherited


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(leases, 'RETRY_FIRST_S', 0.01)
    monkeypatch.setattr(leases, 'RETRY_MAX_S', 0.05)


def test_a_lease_is_on_disk_while_the_guest_is_held(tmp_path):
    held = leases.Leases(lease_file=state.LeaseFile(str(tmp_path)),
                         wall_clock=lambda: 1000.0)
    seen_at_hold = []
    try:
        lease = held.take('server-1', 'pause', 30,
                          lambda: seen_at_hold.extend(recorded(tmp_path)),
                          lambda: None)
        assert seen_at_hold == [{
            'id': lease.id, 'server': 'server-1', 'kind': 'pause',
            'budget_s': 30, 'taken_at': 1000.0, 'expires_at': 1030.0}]
        held.release(lease.id)
        assert recorded(tmp_path) == []
    finally:
        held.stop()


def test_a_hold_that_fails_leaves_no_lease_on_disk(tmp_path):
    held = leases.Leases(lease_file=state.LeaseFile(str(tmp_path)))

    def refused():
        raise RuntimeError('the guest is shut off')

    try:
        with pytest.raises(RuntimeError):
            held.take('server-1', 'freeze', 30, refused, lambda: None)
        assert recorded(tmp_path) == []
        assert held.holding('server-1') is None
    finally:
        held.stop()


class UnwritableLeaseFile:
    path = '/nowhere/leases.json'

    def add(self, record):
        raise OSError(28, 'No space left on device')


def test_a_lease_that_cannot_be_recorded_does_not_touch_the_guest():
    held = leases.Leases(lease_file=UnwritableLeaseFile())
    touched = []
    try:
        with pytest.raises(leases.LeaseNotRecorded) as raised:
            held.take('server-1', 'freeze', 30,
                      lambda: touched.append('hold'), lambda: None)
        assert raised.value.status == 503
        assert 'No space left' in str(raised.value)
        assert touched == []
        assert held.holding('server-1') is None
    finally:
        held.stop()


class FlakyRelease:
    """Fails ``failures`` times, as a libvirtd restarting does."""

    def __init__(self, failures):
        self.failures = failures
        self.calls = 0
        self.done = threading.Event()

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError('Cannot recv data: Connection reset by peer')
        self.done.set()


def test_a_failed_release_is_retried_with_the_lease_kept(tmp_path,
                                                         fast_retries):
    held = leases.Leases(lease_file=state.LeaseFile(str(tmp_path)))
    release = FlakyRelease(failures=3)
    try:
        lease = held.take('server-1', 'pause', 30, lambda: None, release)
        ended = held.release(lease.id)
        # The caller hears of the failure; the server stays held meanwhile.
        assert 'Connection reset' in ended.release_error
        assert held.holding('server-1') is lease
        assert held.active('server-1') is None
        assert [r['id'] for r in recorded(tmp_path)] == [lease.id]
        assert release.done.wait(timeout=5)
        wait_for(lambda: held.holding('server-1') is None)
        assert release.calls == 4
        assert (lease.released_by, lease.release_error) == ('caller', None)
        assert recorded(tmp_path) == []
    finally:
        held.stop()


def test_no_new_lease_while_the_last_one_is_being_released(fast_retries):
    held = leases.Leases()
    release = FlakyRelease(failures=1000)
    touched = []
    try:
        lease = held.take('server-1', 'freeze', 30, lambda: None, release)
        held.release(lease.id)
        # A new freeze now would be thawed by the retries of the old one.
        with pytest.raises(leases.LeaseConflict) as raised:
            held.take('server-1', 'freeze', 30,
                      lambda: touched.append('hold'), lambda: None)
        assert 'being released' in str(raised.value)
        assert touched == []
    finally:
        held.stop()


def test_retries_end_after_retry_s_and_the_next_start_tries_again(
        tmp_path, fast_retries):
    held = leases.Leases(lease_file=state.LeaseFile(str(tmp_path)),
                         retry_s=0.2)
    release = FlakyRelease(failures=1000)
    try:
        lease = held.take('server-1', 'pause', 30, lambda: None, release)
        held.release(lease.id)
        wait_for(lambda: held.holding('server-1') is None)
        calls = release.calls
        time.sleep(0.2)
        assert release.calls == calls > 2
        assert [r['id'] for r in recorded(tmp_path)] == [lease.id]
    finally:
        held.stop()


def test_leases_an_earlier_agent_left_are_released_at_start(tmp_path):
    earlier = state.LeaseFile(str(tmp_path))
    for lease_id, server, kind in [('lease-1', 'server-1', 'freeze'),
                                   ('lease-2', 'server-2', 'pause')]:
        earlier.add({'id': lease_id, 'server': server, 'kind': kind,
                     'budget_s': 60, 'taken_at': 1000.0,
                     'expires_at': 1060.0})
    released = []
    held = leases.Leases(lease_file=state.LeaseFile(str(tmp_path)),
                         wall_clock=lambda: 1010.0)
    try:
        ended = held.release_inherited(
            lambda kind, server: lambda: released.append((kind, server)))
        assert sorted(released) == [('freeze', 'server-1'),
                                    ('pause', 'server-2')]
        assert {lease.released_by for lease in ended} == {leases.RESTART}
        assert recorded(tmp_path) == []
        # A caller of the earlier agent learns its hold ended.
        lease = held.find('lease-2')
        assert lease.released_by == leases.RESTART
        assert 9000 < lease.to_dict(held.clock())['held_ms'] < 11000
    finally:
        held.stop()


def test_the_watchdog_releases_each_guest_on_its_own():
    held = leases.Leases()
    slow_started, second_released = threading.Event(), threading.Event()
    try:
        def slow_thaw():
            slow_started.set()
            time.sleep(1.5)  # a guest agent that takes its whole timeout

        held.take('server-1', 'freeze', 0.1, lambda: None, slow_thaw)
        assert slow_started.wait(timeout=5)
        second = held.take('server-2', 'freeze', 0.2, lambda: None,
                           second_released.set)
        # Not delayed by the slow thaw of server-1.
        assert second_released.wait(timeout=1)
        ended = wait_for(lambda: (lambda e: e.released_at and e)(
            held.find(second.id)))
        assert ended.released_at - ended.taken_at < 0.2 + 0.5
    finally:
        held.stop()
