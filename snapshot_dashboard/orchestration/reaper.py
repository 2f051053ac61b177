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

Copies a compute-side agent holds for a run (the drives it copied, not yet
asked to upload) carry the run's id too; the reaper lists them on every
agent (``agents``, as the service user: a privileged role) and removes the
copies of a run that is not live, older than the grace. The agent removes a
copy nobody exported after its own ``capture_keep`` in any case: with the
default grace that comes first, and the reaper only catches what an agent
configured to keep copies longer leaves.

A volume a restore made (``properties.RESTORED_FROM``) and never delivered
(``properties.DELIVERED``: once delivered it is the user's) is a leftover
too when its run is dead and it is older than the grace, if it is
``available`` or ``error``: a volume still attached somewhere is never
taken away (its run's cleanup named it).

A volume snapshot that Cinder left ``creating`` or ``deleting`` (its
cinder-volume died while making or removing it; Cinder refuses to delete it
and never moves it on) is set to ``error`` first, as an admin would with
``cinder snapshot-reset-state``, then deleted; only once it has not moved
for the grace (``updated_at``), so a slow backend is never cut short.

The grace must be longer than a run can take: the window, then the upload
of its images (``run.UPLOAD_TIMEOUT_S``).
"""

import dataclasses
import datetime
import logging

from cinderclient import exceptions as cinder_exceptions
from glanceclient import exc as glance_exceptions
from keystoneauth1 import exceptions as ks_exceptions

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets

LOG = logging.getLogger(__name__)

# A run ends within its window budget and UPLOAD_TIMEOUT_S; twice that.
DEFAULT_GRACE_S = 2 * run_module.UPLOAD_TIMEOUT_S
SNAPSHOT_PROJECT = 'os-extended-snapshot-attributes:project_id'
VOLUME_PROJECT = 'os-vol-tenant-attr:tenant_id'
# Cinder's states a snapshot is never moved on from once the cinder-volume
# working on it died.
STUCK = frozenset({'creating', 'deleting', 'error_deleting'})


@dataclasses.dataclass(frozen=True)
class Leftover:
    kind: str  # events.VOLUME_SNAPSHOT or events.IMAGE
    id: str
    run_id: str
    project_id: str
    created_at: str
    status: str = ''
    # An agent copy's: the agent's URL and the server it copied.
    agent_url: str = ''
    server_id: str = ''

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


def _agent_copies(agents, now):
    """The copies the agents hold for runs; an agent that cannot be asked
    is logged and passed over (its copies go after its ``capture_keep``).
    """
    found = []
    for agent in agents:
        try:
            held = agent.list_captures()
        except (agent_module.AgentError,
                ks_exceptions.ClientException) as e:
            LOG.warning('Reaper could not list the copies of the agent at '
                        '%s: %s', agent.url, e)
            continue
        for copy in held:
            if not copy.get('run'):
                continue  # not a run's: the agent's capture_keep ends it
            made = now - datetime.timedelta(seconds=copy.get('age_s') or 0)
            found.append(Leftover(
                events.AGENT_COPY, copy['id'], copy['run'],
                copy.get('project') or '', made.isoformat(),
                copy.get('state') or '', agent.url, copy['server']))
    return found


def _restored_volumes(cinder):
    """Volumes restores made and never delivered, detached."""
    found = []
    for volume in cinder.volumes.list(detailed=True,
                                      search_opts={'all_tenants': 1}):
        metadata = getattr(volume, 'metadata', None) or {}
        if not (metadata.get(properties.RUN)
                and metadata.get(properties.RESTORED_FROM)) or \
                metadata.get(properties.DELIVERED) or \
                volume.status not in ('available', 'error'):
            continue
        found.append(Leftover(
            events.VOLUME, volume.id, metadata[properties.RUN],
            getattr(volume, VOLUME_PROJECT, '') or '',
            getattr(volume, 'created_at', '') or '', volume.status))
    return found


def find_leftovers(clients, is_live, grace_s=DEFAULT_GRACE_S, now=None,
                   agents=()):
    """What runs that are neither live nor packaged left, older than
    ``grace_s``. ``clients`` must see every project (an admin's); so must
    ``agents`` (AgentClients acting as the service user)."""
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
        status = getattr(snapshot, 'status', '') or ''
        if status in STUCK:
            # Moved on within the grace: Cinder may still be at it.
            idle = _age_s(getattr(snapshot, 'updated_at', None)
                          or getattr(snapshot, 'created_at', None), now)
            if idle is None or idle < grace_s:
                continue
        if metadata.get(properties.RUN) and not metadata.get(
                properties.PACKAGED_IN):
            found.append(Leftover(
                events.VOLUME_SNAPSHOT, snapshot.id, metadata[properties.RUN],
                getattr(snapshot, SNAPSHOT_PROJECT, '') or '',
                getattr(snapshot, 'created_at', '') or '', status))
    found.extend(_restored_volumes(clients.cinder))
    found.extend(_agent_copies(agents, now))
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
    # Copies, volumes and snapshots first: an image of a set is the last
    # thing to go.
    order = (events.AGENT_COPY, events.VOLUME, events.VOLUME_SNAPSHOT)
    return sorted(leftovers, key=lambda left: left.kind not in order)


def _delete(clients, agents, leftover):
    """Delete one leftover; the text to record."""
    if leftover.kind == events.AGENT_COPY:
        agents[leftover.agent_url].delete_capture(leftover.server_id,
                                                  leftover.id)
        return 'deleted'
    if leftover.kind == events.VOLUME:
        clients.cinder.volumes.delete(leftover.id)
        return 'deleted'
    if leftover.kind != events.VOLUME_SNAPSHOT:
        capture.delete_image(clients.glance, leftover.id)
        return 'deleted'
    if leftover.status in STUCK:
        # Cinder refuses to delete it as it is, and its cinder-volume
        # will never move it on.
        clients.cinder.volume_snapshots.reset_state(leftover.id, 'error')
        clients.cinder.volume_snapshots.delete(leftover.id)
        return 'deleted after a reset from %s to error' % leftover.status
    clients.cinder.volume_snapshots.delete(leftover.id)
    return 'deleted'


def reap(clients, is_live, grace_s=DEFAULT_GRACE_S, now=None, agents=()):
    """Delete ``find_leftovers``; returns (deleted, failures) as lists of
    (Leftover, text)."""
    deleted, failures = [], []
    agents = {agent.url: agent for agent in agents}
    for leftover in find_leftovers(clients, is_live, grace_s, now,
                                   agents.values()):
        try:
            outcome = _delete(clients, agents, leftover)
        except cinder_exceptions.NotFound:
            continue
        except (cinder_exceptions.ClientException,
                glance_exceptions.HTTPException, agent_module.AgentError,
                ks_exceptions.ClientException) as e:
            LOG.warning('Reaper could not delete %s: %s', leftover, e)
            failures.append((leftover, 'not deleted: %s' % e))
            continue
        LOG.warning('Reaper removed %s, left by a run that died: %s',
                    leftover, outcome)
        deleted.append((leftover, outcome))
    return deleted, failures
