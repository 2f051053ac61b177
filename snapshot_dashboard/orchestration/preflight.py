"""Pre-flight: will the set fit in the project's quotas?

Checked before anything is created, and shown by the UI before submit.
"""

import dataclasses
import logging

from glanceclient import exc as glance_exceptions

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


def check_quotas(clients, plan):
    """One QuotaCheck per limited resource the set consumes."""
    checks = []
    volumes = plan.volume_devices
    if volumes:
        limits = {limit.name: limit.value
                  for limit in clients.cinder.limits.get().absolute}
        checks.append(QuotaCheck(
            'volume snapshots', len(volumes),
            limits.get('totalSnapshotsUsed', 0),
            limits.get('maxTotalSnapshots', UNLIMITED)))
        # Cinder counts snapshot gigabytes against the volume gigabytes.
        checks.append(QuotaCheck(
            'volume gigabytes', sum(d.size_gb for d in volumes),
            limits.get('totalGigabytesUsed', 0),
            limits.get('maxTotalVolumeGigabytes', UNLIMITED)))
    try:
        usage = clients.glance.info.get_usage()
    except glance_exceptions.HTTPException as e:
        # Clouds without Glance's usage API (before Yoga) have no image quota.
        LOG.debug('Glance usage unavailable: %s', e)
    else:
        images = usage.get('image_count_total') or {}
        # The set's own image, and one per ephemeral copy.
        needed = 1 + sum(1 for d in plan.devices if d.kind == 'ephemeral')
        checks.append(QuotaCheck('images', needed, images.get('usage', 0),
                                 images.get('limit', UNLIMITED)))
    return checks
