"""Collecting what dead runs left behind, in every project.

Every volume snapshot and image a run makes carries the run's id
(``properties.RUN``). A run's own rollback or a worker's recovery removes
what a failed run made; nothing removes what a run killed outright left (an
``openstack server snapshot create --in-process`` killed after its
captures, a worker whose recovery could not finish). The reaper does, with
the service credential (admin, all projects): a tagged resource is deleted
when its run is not live (``is_live(run_id)``: the worker's database knows
its durable runs; a CLI run is live only while it is younger than the
grace), no usable set of its project names it, it was never marked as a
made set's (``properties.PACKAGED_IN``, once the set is usable; a usable
set's own image is never deleted), and it is older than the grace. A set
whose image never became usable (its upload failed and its run died, or
could not remove it) is a leftover like the rest.

The grace must be longer than a run can take: the window, then the upload
of its images (``run.UPLOAD_TIMEOUT_S``). Agent copies are not listed by any
API: the agent removes a copy nobody exported after ``capture_keep``.
"""

import dataclasses
import datetime
import logging

from cinderclient import exceptions as cinder_exceptions
from glanceclient import exc as glance_exceptions

from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets

LOG = logging.getLogger(__name__)

# A run ends within its window budget and UPLOAD_TIMEOUT_S; twice that.
DEFAULT_GRACE_S = 2 * run_module.UPLOAD_TIMEOUT_S
SNAPSHOT_PROJECT = 'os-extended-snapshot-attributes:project_id'


@dataclasses.dataclass(frozen=True)
class Leftover:
    kind: str  # events.VOLUME_SNAPSHOT or events.IMAGE
    id: str
    run_id: str
    project_id: str
    created_at: str

    def __str__(self):
        return '%s %s of run %s (project %s)' % (
            self.kind, self.id, self.run_id, self.project_id)


def _age_s(created_at, now):
    try:
        created = datetime.datetime.fromisoformat(
            created_at.replace('Z', '+00:00'))
    except (AttributeError, ValueError):
        return None
    if created.tzinfo is None:  # Cinder's times are UTC without a zone
        created = created.replace(tzinfo=datetime.timezone.utc)
    return (now - created).total_seconds()


def _kept(images):
    """(project, id) of everything a set names: its image, its other
    images, its volume snapshots. A set counts only in its own project, so
    an image crafted to look like a set protects nothing of another's."""
    kept = set()
    for image in images:
        try:
            snapshot_set = sets.SnapshotSet.from_image(image)
        except Exception:  # any user may write any property
            LOG.warning('Image %s looks like a set but cannot be read; '
                        'it protects nothing', image.get('id'))
            continue
        if snapshot_set is None or image.get('status') != 'active':
            continue  # a set never uploaded protects nothing
        owner = image.get('owner')
        kept.add((owner, snapshot_set.id))
        for drive in snapshot_set.drives:
            for resource_id in (drive.snapshot_id, drive.image_id):
                if resource_id:
                    kept.add((owner, resource_id))
    return kept


def _made_by_a_run(image):
    """Whether a run made the image, rather than Nova copying a set's
    properties onto a snapshot of a server booted from it (Nova's snapshot
    inherits its base image's properties, ours included): a run's image is
    of the server it names, or of no instance."""
    server = image.get(properties.SERVER)
    return bool(image.get(properties.RUN) and server
                and image.get('instance_uuid') in (None, '', server))


def find_leftovers(clients, is_live, grace_s=DEFAULT_GRACE_S, now=None):
    """What runs that are neither live nor packaged left, older than
    ``grace_s``. ``clients`` must see every project (an admin's)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    images = list(clients.glance.images.list(
        filters={'image_type': 'snapshot'}))
    snapshots = clients.cinder.volume_snapshots.list(
        detailed=True, search_opts={'all_tenants': 1})
    kept = _kept(images)
    # A usable set's image, and whatever was marked as a made set's, is the
    # user's: deleted only by deleting the set. A set image that never
    # became usable (its run died or failed to remove it) is a leftover.
    found = [Leftover(events.IMAGE, i['id'], i[properties.RUN],
                      i.get('owner') or '', i.get('created_at') or '')
             for i in images if _made_by_a_run(i)
             and not (i.get(properties.SET_ID) and i.get('status')
                      == 'active')
             and not i.get(properties.PACKAGED_IN)]
    for snapshot in snapshots:
        metadata = getattr(snapshot, 'metadata', None) or {}
        if metadata.get(properties.RUN) and not metadata.get(
                properties.PACKAGED_IN):
            found.append(Leftover(
                events.VOLUME_SNAPSHOT, snapshot.id, metadata[properties.RUN],
                getattr(snapshot, SNAPSHOT_PROJECT, '') or '',
                getattr(snapshot, 'created_at', '') or ''))
    leftovers = []
    for leftover in found:
        age = _age_s(leftover.created_at, now)
        if age is None or age < grace_s:
            continue
        if (leftover.project_id, leftover.id) in kept:
            continue
        if is_live(leftover.run_id):
            continue
        leftovers.append(leftover)
    # Snapshots first: an image of a set is the last thing to go.
    return sorted(leftovers, key=lambda left: left.kind != events.
                  VOLUME_SNAPSHOT)


def reap(clients, is_live, grace_s=DEFAULT_GRACE_S, now=None):
    """Delete ``find_leftovers``; returns (deleted, failures) as lists of
    (Leftover, text)."""
    deleted, failures = [], []
    for leftover in find_leftovers(clients, is_live, grace_s, now):
        try:
            if leftover.kind == events.VOLUME_SNAPSHOT:
                clients.cinder.volume_snapshots.delete(leftover.id)
            else:
                capture.delete_image(clients.glance, leftover.id)
        except cinder_exceptions.NotFound:
            continue
        except (cinder_exceptions.ClientException,
                glance_exceptions.HTTPException) as e:
            LOG.warning('Reaper could not delete %s: %s', leftover, e)
            failures.append((leftover, str(e)))
            continue
        LOG.warning('Reaper deleted %s, left by a run that died',
                    leftover)
        deleted.append((leftover, 'deleted'))
    return deleted, failures
