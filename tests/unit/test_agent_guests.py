"""Releases that outlive the libvirt connection of their hold.

libvirt's test driver cannot lose its connection, so libvirtd here is a
stand-in: one guest whose state lives on the "host", reached through
connections that can die as they do when libvirtd restarts (each call then
fails, while ``isAlive`` still says True: no event loop notices).
"""

import time

import libvirt
import pytest
import webob

from snapshot_dashboard import web
from snapshot_dashboard.agent import guests
from snapshot_dashboard.agent import handlers
from snapshot_dashboard.agent import leases

UUID = '11111111-2222-3333-4444-555555555555'


def rpc_error(message):
    """A libvirtError as libvirt raises it when libvirtd is out of reach."""
    error = libvirt.libvirtError(message)
    error.err = (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, message,
                 libvirt.VIR_ERR_ERROR, None, None, None, -1, -1)
    return error


class Host:
    def __init__(self):
        self.state = libvirt.VIR_DOMAIN_RUNNING
        self.resumed_through = []
        self.down_for = 0  # connections refused before libvirtd is back
        self.refused = 0


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
        if host.refused < host.down_for:
            host.refused += 1
            raise rpc_error("Failed to connect socket to '/run/libvirt/"
                            "libvirt-sock': No such file or directory")
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


class Clock:
    """time.sleep and time.monotonic of a Hypervisor, without waiting."""

    def __init__(self):
        self.now = 0.0
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def hypervisor_with(clock, connect_retry_s=10):
    return guests.Hypervisor('qemu:///system', 5, 2, guard_s=10,
                             connect_retry_s=connect_retry_s,
                             sleep=clock.sleep, clock=clock)


def test_a_lookup_rides_through_a_libvirtd_restart(host):
    clock = Clock()
    hypervisor = hypervisor_with(clock)
    hypervisor.guest(UUID)
    host.connections[0].dead = True  # libvirtd restarts...
    host.down_for = 5  # ...and its socket is missing a while
    guest = hypervisor.guest(UUID)
    assert guest.domain.connection is host.connections[1]
    assert host.refused == 5
    # A short backoff: ridden through in about 1.5 s, not 10.
    assert clock.slept == [0.1, 0.2, 0.4, 0.8, 1.0]


def test_a_libvirtd_down_past_connect_retry_is_unavailable(host):
    clock = Clock()
    hypervisor = hypervisor_with(clock, connect_retry_s=10)
    host.down_for = 1000
    with pytest.raises(guests.HypervisorUnavailable) as raised:
        hypervisor.guest(UUID)
    assert raised.value.status == 503
    assert 'unreachable' in str(raised.value)
    assert 'Failed to connect socket' in str(raised.value)
    assert sum(clock.slept) == pytest.approx(10)
    assert max(clock.slept) <= 1.0


def test_a_fresh_connection_that_fails_too_is_tried_again(host, monkeypatch):
    # libvirtd listens again but drops its first client while it starts.
    clock = Clock()
    hypervisor = hypervisor_with(clock)
    hypervisor.guest(UUID)
    host.connections[0].dead = True
    lookup = Connection.lookupByUUIDString
    failures = [rpc_error('Cannot recv data: Connection reset by peer')]

    def flaky(connection, uuid):
        if host.connections.index(connection) == 1 and failures:
            raise failures.pop()
        return lookup(connection, uuid)

    monkeypatch.setattr(Connection, 'lookupByUUIDString', flaky)
    guest = hypervisor.guest(UUID)
    assert guest.domain.connection is host.connections[2]


def test_a_libvirt_error_other_than_unreachable_is_not_retried(
        host, monkeypatch):
    clock = Clock()
    hypervisor = hypervisor_with(clock)

    def refused(connection, uuid):
        error = libvirt.libvirtError('operation forbidden')
        error.err = (libvirt.VIR_ERR_OPERATION_DENIED, libvirt.VIR_FROM_QEMU,
                     'operation forbidden', 2, None, None, None, -1, -1)
        raise error

    monkeypatch.setattr(Connection, 'lookupByUUIDString', refused)
    with pytest.raises(libvirt.libvirtError):
        hypervisor.guest(UUID)
    # Once on a fresh connection (the first may be stale), then given up.
    assert len(host.connections) == 2
    assert clock.slept == []


def call(agent, method, path, project='p1', roles='member'):
    request = webob.Request.blank(path, method=method)
    request.headers['X-Project-Id'] = project
    request.headers['X-Roles'] = roles
    response = request.get_response(web.Router(handlers.ROUTES, agent))
    return response.status_int, response.json


def test_libvirt_unreachable_is_a_503_that_says_so(host):
    clock = Clock()
    agent = handlers.Agent(hypervisor_with(clock), leases.Leases(), 30, [])
    try:
        host.down_for = 1000
        status, body = call(agent, 'GET', '/v1/servers/%s' % UUID)
    finally:
        agent.leases.stop()
    assert status == 503
    assert 'libvirt' in body['message']
    assert 'unreachable' in body['message']


def test_a_libvirt_error_in_a_handler_is_never_a_bare_500(host, agent,
                                                          monkeypatch):
    def broken(self):
        raise rpc_error('End of file while reading data')

    monkeypatch.setattr(guests.Guest, 'owner_project', lambda self: 'p1')
    # The connection breaks after the lookup, inside the handler.
    monkeypatch.setattr(Domain, 'state', broken)
    status, body = call(agent, 'GET', '/v1/servers/%s' % UUID)
    assert status == 503
    assert 'End of file' in body['message']
