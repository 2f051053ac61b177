"""Pre-flight: what a set of a server would be, before anything is made.

``check`` reads the server once and says everything a user needs before
choosing: every drive (and why one cannot be captured), whether the
server's agent and guest agent answer, the consistency each level would
give (or why it is refused), and the quotas. ``Preflight.check_selection``
then validates a choice of drives against that same reading, and the run
checks the quotas again right before it starts.
"""

import dataclasses
import logging

from glanceclient import exc as glance_exceptions

from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)

UNLIMITED = -1


@dataclasses.dataclass(frozen=True)
class QuotaCheck:
    resource: str
    needed: int
    used: int
    limit: int

    @property
    def ok(self):
        return self.limit == UNLIMITED or self.used + self.needed <= self.limit

    def describe(self):
        return '%s: %d needed, %d of %d in use' % (
            self.resource, self.needed, self.used, self.limit)


@dataclasses.dataclass(frozen=True)
class Usage:
    """The project's limits and use of what a set consumes, as read once.

    ``volume_limits`` is Cinder's absolute limits (None where no volume
    needed them); ``images`` Glance's ``image_count_total`` (None on a
    cloud without Glance's usage API, which has no image quota).
    """

    volume_limits: dict | None = None
    images: dict | None = None


def read_usage(clients, volumes=True):
    """The project's usage, Cinder's asked only if ``volumes``."""
    def volume_limits():
        return {limit.name: limit.value
                for limit in clients.cinder.limits.get().absolute}

    def image_usage():
        try:
            return clients.glance.info.get_usage().get('image_count_total')
        except glance_exceptions.HTTPException as e:
            # Clouds without Glance's usage API (before Yoga) have no image
            # quota.
            LOG.debug('Glance usage unavailable: %s', e)
            return None
    if volumes:
        volume_limits, images = clients_module.each(
            lambda read: read(), (volume_limits, image_usage))
    else:
        volume_limits, images = None, image_usage()
    return Usage(volume_limits=volume_limits,
                 images=(images or {}) if images is not None else None)


def quota_checks(usage, devices):
    """One QuotaCheck per limited resource a set of ``devices`` consumes."""
    checks = []
    volumes = [d for d in devices if d.is_volume]
    if volumes:
        limits = usage.volume_limits or {}
        checks.append(QuotaCheck(
            'volume snapshots', len(volumes),
            limits.get('totalSnapshotsUsed', 0),
            limits.get('maxTotalSnapshots', UNLIMITED)))
        # Cinder counts snapshot gigabytes against the volume gigabytes.
        checks.append(QuotaCheck(
            'volume gigabytes', sum(d.size_gb for d in volumes),
            limits.get('totalGigabytesUsed', 0),
            limits.get('maxTotalVolumeGigabytes', UNLIMITED)))
    if usage.images is not None:
        # The set's own image, and one per ephemeral copy.
        needed = 1 + sum(1 for d in devices if d.kind == plan_module.EPHEMERAL)
        checks.append(QuotaCheck('images', needed,
                                 usage.images.get('usage', 0),
                                 usage.images.get('limit', UNLIMITED)))
    return checks


def check_quotas(clients, plan):
    """One QuotaCheck per limited resource the plan's set consumes."""
    usage = read_usage(clients, volumes=bool(plan.volume_devices))
    return quota_checks(usage, plan.devices)


@dataclasses.dataclass(frozen=True)
class DriveChoice:
    """A drive of the server as offered to the user: ``reason`` says why it
    cannot be captured, None if it can."""

    name: str
    kind: str
    size_gb: int
    volume_name: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, device, reason=None):
        return cls(name=device.name, kind=device.kind,
                   size_gb=device.size_gb, volume_name=device.volume_name,
                   reason=reason)


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What a set of the server would be.

    ``expected`` maps each consistency level the user may ask for to the
    level the set will have; ``refused`` maps each level that cannot be had
    to why. ``quotas`` are for every drive that can be captured.
    """

    server_id: str
    server_name: str
    drives: tuple  # DriveChoice, root first
    agent: bool  # the server's compute-side agent answers
    guest_agent: bool  # the guest's qemu-guest-agent answers
    expected: dict
    refused: dict
    quotas: tuple
    usage: Usage
    plan: plan_module.Plan | None = None

    @property
    def capturable(self):
        return [d for d in self.drives if d.reason is None]

    def check_selection(self, devices):
        """The quota checks of a set of exactly ``devices`` (None: every
        drive that can be captured); raises UnknownDevices or
        DeviceNotCapturable for a choice that cannot be taken."""
        if devices is None:
            return list(self.quotas)
        wanted = {plan_module.normalize_device_name(name) for name in devices}
        if not wanted:
            raise errors.NothingSelected()
        known = {d.name: d for d in self.drives}
        if wanted - set(known):
            raise errors.UnknownDevices(wanted - set(known), set(known))
        refused = {name: known[name].reason for name in wanted
                   if known[name].reason}
        if refused:
            raise errors.DeviceNotCapturable(refused)
        chosen = [d for d in self.plan.devices if d.name in wanted]
        return quota_checks(self.usage, chosen)


def check(clients, server_id, agent_locator=None, budget_s=60):
    """The pre-flight of a set of the server, reading it once; raises a
    SnapshotSetError (another project's server, one that cannot be
    snapshotted) before anything changes."""
    server, attachments, volumes = plan_module.read_server(clients,
                                                           server_id)
    # Another project's server: refused before its agent is looked for.
    plan_module.check_owner(server, clients.project_id)
    capturers = capture.locate(clients, capture.RunContext('', server_id),
                               agent_locator)
    plan = plan_module.build_plan(server, attachments, volumes,
                                  clients.project_id,
                                  cannot_capture=capturers.cannot_capture)
    expected, refused = {}, {}
    for level in window_module.LEVELS:
        try:
            window = window_module.choose_window(
                level, plan, clients, agent=capturers.agent,
                budget_s=budget_s, agent_status=capturers.agent_status)
            expected[level] = window.level
        except errors.SnapshotSetError as e:
            refused[level] = str(e)
    usage = read_usage(clients, volumes=bool(plan.volume_devices))
    status = capturers.agent_status
    return Preflight(
        server_id=plan.server_id, server_name=plan.server_name,
        drives=tuple([DriveChoice.of(d) for d in plan.devices]
                     + [DriveChoice.of(d, why) for d, why in plan.excluded]),
        agent=status is not None,
        guest_agent=bool(status and status.get('guest_agent')),
        expected=expected, refused=refused,
        quotas=tuple(quota_checks(usage, plan.devices)), usage=usage,
        plan=plan)
