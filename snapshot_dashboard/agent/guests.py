"""The guests of this compute node, through libvirt.

Nova names each domain's UUID after its instance, and records the owner
project in the domain's metadata; both are all the agent needs.
"""

import json
import logging
import threading
import time
from xml.etree import ElementTree

import libvirt
import libvirt_qemu

LOG = logging.getLogger(__name__)

NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'

CAPTURABLE_FORMATS = frozenset({'qcow2', 'raw'})

# Waits between attempts to reach libvirtd: doubled up to the maximum.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 1.0

POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: 'nostate',
    libvirt.VIR_DOMAIN_RUNNING: 'running',
    libvirt.VIR_DOMAIN_BLOCKED: 'blocked',
    libvirt.VIR_DOMAIN_PAUSED: 'paused',
    libvirt.VIR_DOMAIN_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff',
    libvirt.VIR_DOMAIN_CRASHED: 'crashed',
    libvirt.VIR_DOMAIN_PMSUSPENDED: 'suspended',
}

# libvirt prints every error to stderr unless told otherwise; the agent logs
# the ones that matter itself.
libvirt.registerErrorHandler(lambda context, error: None, None)


class GuestError(Exception):
    status = 500


class GuestNotFound(GuestError):
    status = 404


class GuestConflict(GuestError):
    """The guest is in no state for this (paused, shut off, frozen)."""

    status = 409


class HypervisorUnavailable(GuestError):
    """libvirtd did not answer within the retry time (down, restarting)."""

    status = 503


def unreachable(error):
    """Whether a libvirtError says libvirtd could not be reached or the
    connection to it broke (rather than refusing the call)."""
    return (isinstance(error, libvirt.libvirtError)
            and (error.get_error_domain() in (libvirt.VIR_FROM_RPC,
                                              libvirt.VIR_FROM_REMOTE)
                 or error.get_error_code() in (libvirt.VIR_ERR_NO_CONNECT,
                                               libvirt.VIR_ERR_INVALID_CONN)))


class Hypervisor:
    """One libvirt connection, reopened if it dies.

    libvirtd restarts in a few seconds (an upgrade, a fault): opening a
    connection is retried for ``connect_retry_s`` with a short backoff, so
    that every call rides a restart through; after that the call fails with
    HypervisorUnavailable (503).
    """

    def __init__(self, uri, agent_timeout_s, ping_timeout_s, guard_s=600,
                 connect_retry_s=10, sleep=time.sleep, clock=time.monotonic):
        self.uri = uri
        self.agent_timeout_s = agent_timeout_s
        self.ping_timeout_s = ping_timeout_s
        self.guard_s = guard_s
        self.connect_retry_s = connect_retry_s
        self.sleep = sleep
        self.clock = clock
        self._connection = None
        self._lock = threading.Lock()

    def connection(self, fresh=False, replacing=None, deadline=None):
        """The open connection, or a new one: when ``fresh``, when none is
        open or it says it died, or when it is ``replacing`` (a connection
        that just failed a call: another thread may have replaced it
        already)."""
        with self._lock:
            if (fresh or self._connection is None
                    or self._connection is replacing
                    or not self._connection.isAlive()):
                self._connection = None
                self._connection = self._open(deadline)
            return self._connection

    def _open(self, deadline=None):
        if deadline is None:
            deadline = self.clock() + self.connect_retry_s
        wait_s = BACKOFF_FIRST_S
        while True:
            try:
                return libvirt.open(self.uri)
            except libvirt.libvirtError as e:
                left = deadline - self.clock()
                if left <= 0:
                    raise HypervisorUnavailable(
                        'libvirt (%s) is unreachable on this host after %s '
                        's of retries: %s' % (self.uri, self.connect_retry_s,
                                              e)) from e
                LOG.warning('Cannot connect to libvirt (%s); retrying in '
                            '%.1f s', e, min(wait_s, left))
                self.sleep(min(wait_s, left))
                wait_s = min(wait_s * 2, BACKOFF_MAX_S)

    def call(self, use):
        """``use(connection)``, on a fresh connection if the open one fails
        it: without an event loop, a connection whose libvirtd restarted
        still says it is alive until it is used. While libvirtd cannot be
        reached it is tried again, for ``connect_retry_s`` in all."""
        deadline = self.clock() + self.connect_retry_s
        connection = self.connection(deadline=deadline)
        failed_once = False
        wait_s = BACKOFF_FIRST_S
        while True:
            try:
                return use(connection)
            except libvirt.libvirtError as e:
                # The first failure may be the stale connection of a
                # restarted libvirtd, whatever it says; after that only a
                # libvirtd out of reach is worth waiting for.
                left = deadline - self.clock()
                if failed_once and not unreachable(e):
                    raise
                if failed_once and left <= 0:
                    raise HypervisorUnavailable(
                        'libvirt (%s) is unreachable on this host after %s '
                        's of retries: %s' % (self.uri, self.connect_retry_s,
                                              e)) from e
                LOG.warning('The libvirt connection failed (%s); opening a '
                            'fresh one', e)
                if failed_once:
                    self.sleep(min(wait_s, max(left, 0)))
                    wait_s = min(wait_s * 2, BACKOFF_MAX_S)
                failed_once = True
                connection = self.connection(replacing=connection,
                                             deadline=deadline)

    def guest(self, uuid):
        """The guest, looked up now (``call``: a libvirtd restart is ridden
        through)."""
        return Guest(self.call(lambda c: _lookup(c, uuid)), self)

    def guests(self):
        return [Guest(d, self)
                for d in self.call(lambda c: c.listAllDomains())]


def _lookup(connection, uuid):
    try:
        return connection.lookupByUUIDString(uuid)
    except libvirt.libvirtError as e:
        if e.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN,
                                  libvirt.VIR_ERR_INVALID_ARG):
            raise GuestNotFound('No server %s on this host.' % uuid) from None
        raise


class Guest:
    def __init__(self, domain, hypervisor):
        self.domain = domain
        self.hypervisor = hypervisor
        self.agent_timeout_s = hypervisor.agent_timeout_s
        self.ping_timeout_s = hypervisor.ping_timeout_s
        self.guard_s = hypervisor.guard_s

    @property
    def uuid(self):
        return self.domain.UUIDString()

    def owner_project(self):
        """The project in Nova's metadata, or None (not a Nova guest)."""
        try:
            metadata = self.domain.metadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, NOVA_NS)
        except libvirt.libvirtError:
            return None
        # libvirtd's own XML, not a guest's: the guest cannot write it.
        project = ElementTree.fromstring(metadata).find(  # noqa: S314
            './owner/project')
        return None if project is None else project.get('uuid')

    def power_state(self):
        state, _ = self.domain.state()
        return POWER_STATES.get(state, 'unknown')

    def _agent(self, command, timeout_s):
        return json.loads(libvirt_qemu.qemuAgentCommand(
            self.domain, json.dumps({'execute': command}), timeout_s, 0))[
                'return']

    def agent_answers(self):
        if self.power_state() != 'running':
            return False
        try:
            self._agent('guest-ping', self.ping_timeout_s)
        except libvirt.libvirtError:
            return False
        return True

    def freeze_status(self):
        """'frozen', 'thawed', or None when the guest agent cannot tell."""
        try:
            return self._agent('guest-fsfreeze-status', self.ping_timeout_s)
        except libvirt.libvirtError:
            return None

    def local_drives(self, domain_xml=None):
        """The disks libvirt holds as files (Nova's root, ephemeral, swap),
        and whether each can be captured here: a copy needs a live QEMU
        and a format QEMU reads block by block."""
        xml = ElementTree.fromstring(  # noqa: S314 - libvirtd's own XML
            domain_xml or self.domain.XMLDesc(0))
        live = self.power_state() in ('running', 'paused')
        drives = []
        for disk in xml.findall('./devices/disk'):
            source = disk.find('source')
            target = disk.find('target')
            driver = disk.find('driver')
            if (disk.get('device') != 'disk' or disk.get('type') != 'file'
                    or source is None or target is None):
                continue
            fmt = None if driver is None else driver.get('type')
            reason = None
            if not live:
                reason = 'the server is %s' % self.power_state()
            elif fmt not in CAPTURABLE_FORMATS:
                reason = 'format %s cannot be copied' % fmt
            drives.append({'device': target.get('dev'),
                           'file': source.get('file'), 'format': fmt,
                           'capturable': reason is None, 'reason': reason})
        return drives

    def _check_running(self, action):
        state = self.power_state()
        if state != 'running':
            raise GuestConflict('Cannot %s server %s: it is %s.'
                                % (action, self.uuid, state))

    def _bound_agent_wait(self):
        # libvirt's default waits for a hung guest agent for minutes.
        try:
            self.domain.agentSetResponseTimeout(self.agent_timeout_s, 0)
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise

    def freeze(self):
        """Freeze every filesystem; on any error leave the guest thawed."""
        self._check_running('freeze')
        self._bound_agent_wait()
        try:
            return self.domain.fsFreeze()
        except libvirt.libvirtError as e:
            # A freeze that timed out can still land when a slow agent
            # wakes up: make sure it does not stay.
            self.ensure_thawed()
            raise GuestConflict('Could not freeze server %s: %s'
                                % (self.uuid, e)) from e

    def thaw(self):
        """Returns once the guest is thawed; GuestError while that is not
        known. A guest that no longer runs holds no freeze."""
        if self.power_state() in ('shutoff', 'crashed'):
            return
        self._bound_agent_wait()
        try:
            self.domain.fsThaw()
        except libvirt.libvirtError as e:
            if self.freeze_status() == 'thawed':
                return
            raise GuestError('Could not thaw server %s: %s'
                             % (self.uuid, e)) from e

    def ensure_thawed(self):
        """Thaw unless the guest agent says it is thawed; never raises.

        A guest agent that does not answer may still apply a freeze it was
        sent when it wakes up; a guard thread then keeps asking until it
        answers thawed (or ``guard_s`` passes).
        """
        if self._thaw_once():
            return True
        self._start_guard(_answers_thawed, 'thawed')
        return False

    def _thaw_once(self):
        if self.freeze_status() == 'thawed':
            return True
        try:
            self.domain.fsThaw()
            return True
        except libvirt.libvirtError as e:
            LOG.error('Server %s may still be frozen: %s', self.uuid, e)
            return False

    def pause(self):
        self._check_running('pause')
        try:
            self.domain.suspend()
        except libvirt.libvirtError as e:
            # The suspend may have reached QEMU all the same.
            self.ensure_resumed()
            raise GuestConflict('Could not pause server %s: %s'
                                % (self.uuid, e)) from e

    def resume(self):
        """Resume a paused guest (the pause a lease made); a guest that runs
        or no longer runs is left as it is."""
        if self.power_state() == 'paused':
            self.domain.resume()

    def ensure_resumed(self):
        """Resume if paused; never raises. If libvirt fails, a guard thread
        keeps trying (``guard_s``)."""
        if _resumed(self):
            return True
        self._start_guard(_resumed, 'running')
        return False

    def _start_guard(self, settled, what):
        threading.Thread(target=self._guard, args=(settled, what),
                         daemon=True, name='guard-%s' % self.uuid).start()

    def _guard(self, settled, what):
        """Every second for ``guard_s``, on the guest looked up again (its
        libvirt connection may have died): until ``settled(guest)``."""
        deadline = time.monotonic() + self.guard_s
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                if settled(self.hypervisor.guest(self.uuid)):
                    LOG.info('Server %s is %s again', self.uuid, what)
                    return
            except GuestNotFound:
                LOG.info('Server %s is gone from this host', self.uuid)
                return
            except (libvirt.libvirtError, HypervisorUnavailable) as e:
                LOG.warning('Server %s: %s', self.uuid, e)
        LOG.error('Server %s was not %s within %s s', self.uuid, what,
                  self.guard_s)


def _answers_thawed(guest):
    status = guest.freeze_status()
    if status == 'frozen':
        LOG.warning('Server %s froze late; thawing it', guest.uuid)
        guest._thaw_once()
    return status == 'thawed'


def _resumed(guest):
    try:
        guest.resume()
    except libvirt.libvirtError as e:
        LOG.error('Server %s may still be paused: %s', guest.uuid, e)
        return False
    return True
