"""Snapshot sets as stored: one Glance image and its volume snapshots.

An image is a set when its ``snapshot_set_id`` property is its own id. A
server booted from a set inherits the set's properties into Nova's next
snapshot of it; that image carries another image's id and is not a set.
"""

import dataclasses
import json
import logging
import uuid

from cinderclient import exceptions as cinder_exceptions
from glanceclient import exc as glance_exceptions

from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import properties

LOG = logging.getLogger(__name__)

AVAILABLE = 'available'
CREATING = 'creating'
DELETING = 'deleting'
ERROR = 'error'

IMAGE_STATUSES = {
    'active': AVAILABLE,
    'queued': CREATING,
    'saving': CREATING,
    'uploading': CREATING,
    'importing': CREATING,
    'pending_delete': DELETING,
}
# Glance's largest page (api_limit_max): one call lists up to this many.
LIST_PAGE_SIZE = 1000

SNAPSHOT_STATUSES = {
    'available': AVAILABLE,
    'creating': CREATING,
    'deleting': DELETING,
}


@dataclasses.dataclass
class Drive:
    """One captured drive of a set."""

    name: str
    kind: str
    size_gb: int
    volume_id: str | None = None
    volume_name: str | None = None
    snapshot_id: str | None = None
    image_id: str | None = None
    captured_ms: int | None = None  # since the window opened
    shared_instant: bool = False
    captured_by: str | None = None  # cinder, agent or nova

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


@dataclasses.dataclass
class SnapshotSet:
    id: str
    name: str
    server_id: str
    run_id: str
    consistency: str
    requested_consistency: str
    window_ms: int
    drives: list
    excluded: list = dataclasses.field(default_factory=list)
    bootable: bool = False
    created_at: str | None = None
    status: str = CREATING
    project_id: str | None = None
    schedule_id: str | None = None  # the backup schedule that made it
    undo_of: str | None = None  # the restore run it is the safety set of

    @classmethod
    def from_image(cls, image):
        """The set an image holds, or None if the image is not a set."""
        if image.get(properties.SET_ID) != image['id']:
            return None
        return cls(
            id=image['id'], name=image.get('name') or '',
            server_id=image.get(properties.SERVER, ''),
            run_id=image.get(properties.RUN, ''),
            consistency=image.get(properties.CONSISTENCY, ''),
            requested_consistency=image.get(properties.REQUESTED, ''),
            window_ms=int(image.get(properties.WINDOW_MS) or 0),
            drives=[Drive.from_dict(d) for d in
                    json.loads(image.get(properties.DEVICES) or '[]')],
            excluded=json.loads(image.get(properties.EXCLUDED) or '[]'),
            bootable=image.get(properties.BOOTABLE) == 'True',
            created_at=image.get('created_at'),
            status=IMAGE_STATUSES.get(image.get('status'), ERROR),
            project_id=image.get('owner'),
            schedule_id=image.get(properties.SCHEDULE),
            undo_of=image.get(properties.UNDO_OF))

    @classmethod
    def from_dict(cls, data):
        """The set ``dataclasses.asdict`` gave (as the REST API shows it)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values['drives'] = [Drive.from_dict(d) for d in data['drives']]
        return cls(**values)

    @property
    def snapshot_ids(self):
        return [d.snapshot_id for d in self.drives if d.snapshot_id]

    @property
    def member_image_ids(self):
        """The images of its drives besides its own (ephemeral copies)."""
        return [d.image_id for d in self.drives
                if d.image_id and d.image_id != self.id]

    def with_part_statuses(self, statuses, image_statuses):
        """The set's status given its snapshots' Cinder statuses and its
        other images' Glance statuses by id (a part missing from them is
        gone): available only once every part is. The set's own image can
        be active while a copy of its ephemeral disk is still uploading."""
        states = [self.status] + [
            SNAPSHOT_STATUSES.get(statuses.get(sid), ERROR)
            for sid in self.snapshot_ids] + [
            IMAGE_STATUSES.get(image_statuses.get(iid), ERROR)
            for iid in self.member_image_ids]
        for state in (ERROR, DELETING, CREATING):
            if state in states:
                return dataclasses.replace(self, status=state)
        return dataclasses.replace(self, status=AVAILABLE)


def _filters(clients, server_id, all_projects):
    filters = {'image_type': 'snapshot'}
    if not all_projects:
        filters['owner'] = clients.project_id
    if server_id:
        filters[properties.SERVER] = server_id
    return filters


MAX_PAGE_SIZE = 100
# A set has a part per drive: one claiming more (its image's owner writes
# its properties) is shown in error without asking for each.
MAX_PARTS = 64


def _is_id(text):
    """Whether ``text`` is an id as Glance and Cinder write them: a UUID in
    its canonical form, nothing that could end up as more of a URL."""
    try:
        return str(uuid.UUID(str(text))) == text
    except ValueError:
        return False


def page_sets(clients, limit, marker=None, server_id=None,
              all_projects=False):
    """One page of the sets ``list_sets`` lists: at most ``limit`` (1 to
    ``MAX_PAGE_SIZE``) after the set ``marker``, and the marker of the next
    page (None on the last). A marker that is not a set's id, or names an
    image Glance no longer has, raises SetNotFound.

    Glance is read from the marker on, a page of ``limit + 1`` images at a
    time, until the page is full (a set's ephemeral copies and Nova's own
    snapshots are images too); Cinder and Glance are asked only for the
    parts of the page's sets, at once. The calls a page takes do not grow
    with the number of sets.
    """
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    if marker is not None and not _is_id(marker):
        raise errors.SetNotFound(marker)
    images, found = {}, []
    try:
        for image in clients.glance.images.list(
                filters=_filters(clients, server_id, all_projects),
                sort_key='created_at', sort_dir='desc', page_size=limit + 1,
                marker=marker):
            images[image['id']] = image
            snapshot_set = _readable_set(image)
            if snapshot_set:
                found.append(snapshot_set)
                if len(found) > limit:
                    break
    except glance_exceptions.HTTPBadRequest:
        if marker is None:
            raise
        raise errors.SetNotFound(marker) from None  # the marker is gone
    more = len(found) > limit
    found = found[:limit]
    asked = [s for s in found
             if len(s.snapshot_ids) + len(s.member_image_ids) <= MAX_PARTS]
    statuses, image_statuses = _part_statuses(
        clients, [i for s in asked for i in s.snapshot_ids if _is_id(i)],
        [i for s in asked for i in s.member_image_ids if _is_id(i)], images)
    return ([s.with_part_statuses(statuses, image_statuses) for s in found],
            found[-1].id if more else None)


def _part_statuses(clients, snapshot_ids, image_ids, read=None):
    """The Cinder statuses of ``snapshot_ids`` and the Glance statuses of
    ``image_ids`` (those in ``read``, images already read, taken from it),
    asked for at once; a part that is gone is left out."""
    read = read or {}

    def snapshot_status(snapshot_id):
        try:
            return clients.cinder.volume_snapshots.get(snapshot_id).status
        except cinder_exceptions.NotFound:
            return None

    def image_status(image_id):
        if image_id in read:
            return read[image_id].get('status')
        try:
            return clients.glance.images.get(image_id).get('status')
        except glance_exceptions.HTTPNotFound:
            return None

    def known(ids, status):
        return {i: found for i, found in zip(
            ids, clients_module.each(status, ids), strict=True)
            if found is not None}
    return known(snapshot_ids, snapshot_status), known(image_ids,
                                                        image_status)


def _readable_set(image):
    """The set ``image`` is, None if it is none or cannot be read (any user
    may write any property on an image of theirs)."""
    try:
        return SnapshotSet.from_image(image)
    except (ValueError, TypeError, KeyError, AttributeError):
        LOG.warning('Image %s looks like a set but cannot be read',
                    image.get('id'))
        return None


def list_sets(clients, server_id=None, all_projects=False):
    """The project's sets (with ``all_projects``, an admin's view of every
    project's), newest first, with two API calls in all."""
    images = list(clients.glance.images.list(
        filters=_filters(clients, server_id, all_projects),
        sort_key='created_at', sort_dir='desc',
        page_size=LIST_PAGE_SIZE))
    found = [s for s in map(SnapshotSet.from_image, images) if s]
    # A set's other images are snapshots of its server too: listed here.
    image_statuses = {image['id']: image.get('status') for image in images}
    statuses = {}
    if any(s.snapshot_ids for s in found):
        statuses = {snapshot.id: snapshot.status for snapshot in
                    clients.cinder.volume_snapshots.list(
                        detailed=True, search_opts={'all_tenants': 1}
                        if all_projects else None)}
    return [s.with_part_statuses(statuses, image_statuses) for s in found]


def get_set(clients, set_id, any_project=False):
    """The set, if it is the project's (an admin's ``any_project``: any
    project's the credentials can see)."""
    try:
        image = clients.glance.images.get(set_id)
    except glance_exceptions.HTTPNotFound:
        raise errors.SetNotFound(set_id) from None
    snapshot_set = _readable_set(image)
    if snapshot_set is None or (not any_project
                                and image.get('owner') != clients.project_id):
        raise errors.SetNotFound(set_id)
    return snapshot_set.with_part_statuses(*_part_statuses(
        clients, snapshot_set.snapshot_ids, snapshot_set.member_image_ids))


def delete_set(clients, set_id, any_project=False):
    """Delete the set's volume snapshots, then its image; nothing else.

    A snapshot that is not tagged with the set's run is left alone. If a
    snapshot cannot be deleted the image stays, so the delete can be retried.
    """
    snapshot_set = get_set(clients, set_id, any_project=any_project)
    failures = []
    for snapshot_id in snapshot_set.snapshot_ids:
        try:
            snapshot = clients.cinder.volume_snapshots.get(snapshot_id)
            if snapshot.metadata.get(properties.RUN) != snapshot_set.run_id:
                LOG.warning('Snapshot %s is not part of set %s; kept.',
                            snapshot_id, set_id)
                continue
            clients.cinder.volume_snapshots.delete(snapshot_id)
        except cinder_exceptions.NotFound:
            continue
        except cinder_exceptions.ClientException as e:
            failures.append('volume snapshot %s: %s' % (snapshot_id, e))
    for drive in snapshot_set.drives:
        if not drive.image_id or drive.image_id == set_id:
            continue
        try:
            image = clients.glance.images.get(drive.image_id)
        except glance_exceptions.HTTPNotFound:
            continue
        if image.get(properties.RUN) != snapshot_set.run_id:
            LOG.warning('Image %s is not part of set %s; kept.',
                        drive.image_id, set_id)
            continue
        try:
            capture.delete_image(clients.glance, drive.image_id)
        except glance_exceptions.HTTPException as e:
            failures.append('image %s: %s' % (drive.image_id, e))
    if failures:
        raise errors.SetDeleteFailed(set_id, failures)
    capture.delete_image(clients.glance, set_id)
