"""Releases that outlive the libvirt connection of their hold.

libvirt's test driver cannot lose its connection, so libvirtd here is a
stand-in: one guest whose state lives on the "host", reached through
connections that can die as they do when libvirtd restarts (each call then
fails, while ``isAlive`` still says True: no event loop notices).
"""

import time

import libvirt
import pytest

from snapshot_dashboard.agent import guests
from snapshot_dashboard.agent import handlers
from snapshot_dashboard.agent import leases

UUID = '11111111-2222-3333-4444-555555555555'


class Host:
    def __init__(self):
        self.state = libvirt.VIR_DOMAIN_RUNNING
        self.resumed_through = []


class Connection:
    def __init__(self, host):
        self.host = host
        self.dead = False

    def check(self):
        if self.dead:
            raise libvirt.libvirtError('End of file while reading data')

    def isAlive(self):  # noqa: N802 - libvirt's name
        return True

    def lookupByUUIDString(self, uuid):  # noqa: N802
        self.check()
        return Domain(self)


class Domain:
    def __init__(self, connection):
        self.connection = connection
        self.host = connection.host

    def UUIDString(self):  # noqa: N802
        return UUID

    def state(self):
        self.connection.check()
        return [self.host.state, 1]

    def suspend(self):
        self.connection.check()
        self.host.state = libvirt.VIR_DOMAIN_PAUSED

    def resume(self):
        self.connection.check()
        self.host.state = libvirt.VIR_DOMAIN_RUNNING
        self.host.resumed_through.append(self.connection)


@pytest.fixture
def host(monkeypatch):
    host = Host()
    host.connections = []

    def open_connection(uri):
        host.connections.append(Connection(host))
        return host.connections[-1]

    monkeypatch.setattr(libvirt, 'open', open_connection)
    return host


@pytest.fixture
def agent(host):
    hypervisor = guests.Hypervisor('qemu:///system', 5, 2, guard_s=10)
    agent = handlers.Agent(hypervisor, leases.Leases(), 30, [])
    yield agent
    agent.leases.stop()


def test_a_resume_after_libvirtd_restarted_uses_a_fresh_connection(
        host, agent):
    lease = agent.leases.take(
        UUID, leases.PAUSE, 30, lambda: agent.hypervisor.guest(UUID).pause(),
        handlers.release_of(agent, leases.PAUSE, UUID))
    first, = host.connections
    first.dead = True  # libvirtd restarted
    ended = agent.leases.release(lease.id)
    assert ended.release_error is None
    assert host.state == libvirt.VIR_DOMAIN_RUNNING
    second, = host.resumed_through
    assert second is not first


def test_a_pause_that_failed_halfway_is_undone(host, agent, monkeypatch):
    guest = agent.hypervisor.guest(UUID)

    def suspend_then_lose_the_connection():
        # QEMU paused the guest; the answer never came back.
        host.state = libvirt.VIR_DOMAIN_PAUSED
        guest.domain.connection.dead = True
        raise libvirt.libvirtError('End of file while reading data')

    monkeypatch.setattr(guest.domain, 'suspend',
                        suspend_then_lose_the_connection)
    with pytest.raises(guests.GuestConflict):
        guest.pause()
    # The guard resumes it on a fresh connection within a few seconds.
    for _ in range(50):
        if host.state == libvirt.VIR_DOMAIN_RUNNING:
            break
        time.sleep(0.1)
    assert host.state == libvirt.VIR_DOMAIN_RUNNING
    assert len(host.connections) == 2


def test_a_release_of_a_guest_gone_from_the_host_is_done(host, agent):
    lease = agent.leases.take(
        UUID, leases.PAUSE, 30, lambda: agent.hypervisor.guest(UUID).pause(),
        handlers.release_of(agent, leases.PAUSE, UUID))

    def no_domain(uuid):
        raise guests.GuestNotFound('No server %s on this host.' % uuid)

    agent.hypervisor.guest = no_domain
    ended = agent.leases.release(lease.id)
    assert (ended.released_by, ended.release_error) == ('caller', None)
    assert agent.leases.holding(UUID) is None


class FreezableDomain(Domain):
    def __init__(self, connection, thaw_error=None, status='thawed'):
        super().__init__(connection)
        self.thaw_error = thaw_error
        self.status = status
        self.thaws = 0

    def agentSetResponseTimeout(self, timeout, flags):  # noqa: N802
        pass

    def fsThaw(self):  # noqa: N802
        self.thaws += 1
        if self.thaw_error:
            raise libvirt.libvirtError(self.thaw_error)
        return 1


def test_a_guest_shut_off_during_its_freeze_needs_no_thaw(host, agent):
    host.state = libvirt.VIR_DOMAIN_SHUTOFF
    domain = FreezableDomain(Connection(host), thaw_error='not running')
    guests.Guest(domain, agent.hypervisor).thaw()
    assert domain.thaws == 0


def test_a_thaw_that_errs_on_a_guest_answering_thawed_is_done(
        host, agent, monkeypatch):
    domain = FreezableDomain(Connection(host), thaw_error='timed out')
    guest = guests.Guest(domain, agent.hypervisor)
    monkeypatch.setattr(guest, 'freeze_status', lambda: 'thawed')
    guest.thaw()
    monkeypatch.setattr(guest, 'freeze_status', lambda: None)
    with pytest.raises(guests.GuestError):
        guest.thaw()
