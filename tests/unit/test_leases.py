"""The agent's leases: how long a guest may be held, whoever dies."""

import threading

from snapshot_dashboard.agent import leases
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import window as window_module


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
        ended = held.find(lease.id)
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
