"""Restoring a set's drives as new volumes (no Django).

Any drive of an available set comes back as a new Cinder volume of the
caller's project, made with the caller's own rights: a volume drive from
its Cinder snapshot, the root or ephemeral disk from its image (Cinder
writes the image into the volume). Optionally every new volume is then
attached to ``attach_to``, a server of the project, at its next free
device.

Each volume is named ``<set name> <device>``, and tagged with the run
(``properties.RUN``) and what it holds again (``properties.RESTORED_FROM``:
``<set id> <device>``). Its undo is registered before it is asked for, as a
set's are: a failure removes every volume the run made (detached first),
found by id or, when Cinder's answer was lost, by the run's tag, and never
a volume the run did not make. Once everything is done the volumes are
marked ``properties.DELIVERED``: they are the user's, and a recovery of the
run keeps them. Nothing the set holds is changed, and no volume or server
in use is touched except to attach the new volumes.
"""

import dataclasses
import functools
import logging
import uuid

from cinderclient import exceptions as cinder_exceptions
from keystoneauth1 import exceptions as ks_exceptions
from novaclient import exceptions as nova_exceptions

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import preflight
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)

# Cinder writes a volume from an image (download, conversion) in minutes.
VOLUME_TIMEOUT_S = 900
ATTACH_TIMEOUT_S = 300
POLL_S = 2
ATTACHABLE = ('ACTIVE', 'SHUTOFF')
# Cinder's states on the way to available (or in-use), which it lets
# nobody delete or detach from.
MAKING = ('creating', 'downloading')
ATTACHING = ('attaching', 'reserved', 'detaching')


@dataclasses.dataclass(frozen=True)
class RestorePlan:
    snapshot_set: sets.SnapshotSet
    drives: tuple  # sets.Drive, in the set's order
    server_id: str | None = None  # attach to
    server_name: str | None = None


@dataclasses.dataclass(frozen=True)
class RestoredVolume:
    device: str  # the drive of the set
    volume_id: str
    attached_as: str | None = None  # the device on ``attach_to``


def plan_restore(clients, set_id, devices=None, attach_to=None):
    """What restoring ``devices`` (None: every drive) of the set would
    make; raises a SnapshotSetError (nothing made) when it cannot be."""
    snapshot_set = sets.get_set(clients, set_id)
    if snapshot_set.status != sets.AVAILABLE:
        raise errors.SetNotUsable(set_id, snapshot_set.status)
    drives = {d.name: d for d in snapshot_set.drives}
    chosen = list(drives) if devices is None else list(dict.fromkeys(devices))
    if not chosen:
        raise errors.NothingSelected()
    unknown = set(chosen) - set(drives)
    if unknown:
        raise errors.UnknownDevices(unknown, drives)
    missing = [name for name in chosen
               if not (drives[name].snapshot_id or drives[name].image_id)]
    if missing:
        raise errors.RestoreFailed('The set holds nothing for %s.'
                                   % ', '.join(missing))
    server_name = None
    if attach_to:
        try:
            server = clients.nova.servers.get(attach_to)
        except nova_exceptions.NotFound:
            raise errors.ServerNotFound(attach_to) from None
        if server.tenant_id != clients.project_id:
            raise errors.ServerNotFound(attach_to)
        task_state = getattr(server, 'OS-EXT-STS:task_state', None)
        if server.status not in ATTACHABLE or task_state:
            raise errors.ServerNotAttachable(server.name, server.status,
                                             task_state)
        server_name = server.name
    _check_quota(clients, [drives[name] for name in chosen])
    return RestorePlan(snapshot_set, tuple(drives[name] for name in chosen),
                       attach_to or None, server_name)


def _check_quota(clients, drives):
    limits = {limit.name: limit.value
              for limit in clients.cinder.limits.get().absolute}
    checks = [
        _quota('volumes', len(drives), limits, 'totalVolumesUsed',
               'maxTotalVolumes'),
        _quota('volume gigabytes', sum(d.size_gb or 1 for d in drives),
               limits, 'totalGigabytesUsed', 'maxTotalVolumeGigabytes')]
    short = [check for check in checks if not check.ok]
    if short:
        raise errors.QuotaExceeded(short)


def _quota(resource, needed, limits, used, limit):
    return preflight.QuotaCheck(resource, needed, limits.get(used, 0),
                                limits.get(limit, preflight.UNLIMITED))


def restore_as_volumes(clients, set_id, devices=None, attach_to=None,
                       run_id=None, progress=None, clock=window_module.Clock):
    """Restore ``devices`` of the set as new volumes (attached to
    ``attach_to`` if given) and return a RestoredVolume each. Raises a
    SnapshotSetError with everything it made removed (``RestoreFailed``
    names what could not be, in ``rollback_failures``)."""
    report = functools.partial(run_module.report, progress)
    report(events.PLAN, events.STARTED)
    plan = plan_restore(clients, set_id, devices, attach_to)
    report(events.PLAN, events.DONE,
           drives=tuple(d.name for d in plan.drives))
    run_id = run_id or str(uuid.uuid4())
    rollback = run_module.Rollback(on_add=lambda resource: report(
        events.RESOURCE, events.DONE, resource=resource), clock=clock)
    try:
        volumes = {}
        for drive in plan.drives:
            report(events.RESTORE, events.STARTED, device=drive.name)
            volumes[drive.name] = _new_volume(clients, plan, drive, run_id,
                                              rollback, clock)
        for drive in plan.drives:
            _wait_for_volume(clients, volumes[drive.name], clock,
                             VOLUME_TIMEOUT_S, ('available',))
            report(events.RESTORE, events.DONE, device=drive.name)
        restored = []
        for drive in plan.drives:
            attached_as = None
            if plan.server_id:
                report(events.ATTACH, events.STARTED, device=drive.name)
                attached_as = _attach(clients, plan.server_id,
                                      volumes[drive.name], clock, rollback)
                report(events.ATTACH, events.DONE, device=drive.name,
                       message='%s attached to %s as %s' % (
                           drive.name, plan.server_name, attached_as))
            restored.append(RestoredVolume(drive.name, volumes[drive.name],
                                           attached_as))
        _deliver(clients.cinder, [v.volume_id for v in restored], clock)
    except errors.Superseded:
        raise  # what it made is the new owner's to keep or remove
    except Exception as e:
        report(events.ROLLBACK, events.STARTED)
        rollback.run()
        report(events.ROLLBACK, events.DONE, message=(
            'could not remove: %s' % '; '.join(rollback.failures)
            if rollback.failures else 'removed everything the restore made'))
        if isinstance(e, ks_exceptions.Unauthorized):
            raise  # the run's permission is gone: said as such
        raise failed(e, rollback.failures,
                     'The drives could not be restored') from e
    return restored


def failed(error, rollback_failures, what):
    """The RestoreFailed a restore raises for ``error``: a refusal in its
    own words, anything else after ``what``."""
    if isinstance(error, errors.SnapshotSetError) and not isinstance(
            error, errors.RestoreFailed):
        message = str(error)
    else:
        message = '%s: %s' % (what, error)
    return errors.RestoreFailed(message, rollback_failures)


def _new_volume(clients, plan, drive, run_id, rollback, clock,
                extra_metadata=None):
    """Ask Cinder for the drive's new volume; its undo first."""
    tag = '%s %s' % (plan.snapshot_set.id, drive.name)
    metadata = dict(extra_metadata or {}, **{properties.RUN: run_id,
                                             properties.RESTORED_FROM: tag})
    pending = events.Resource(events.VOLUME, tag)
    found = {}
    rollback.add(pending, _undo_volume, clients.cinder, run_id, tag, found,
                 clock)
    source = ({'snapshot_id': drive.snapshot_id} if drive.snapshot_id
              else {'imageRef': drive.image_id})
    volume = clients.cinder.volumes.create(
        drive.size_gb or 1, name=('%s %s' % (plan.snapshot_set.name,
                                             drive.name))[:255],
        description='Drive %s of snapshot set %s, restored.' % (
            drive.name, plan.snapshot_set.id),
        metadata=metadata, **source)
    found['id'] = volume.id
    rollback.created(events.Resource(events.VOLUME, volume.id))
    return volume.id


def _deliver(cinder, volume_ids, clock):
    """Mark the volumes delivered: the user's from then on. A mark the
    service could not take is tried again; one refused fails the restore
    (whose rollback keeps the volumes already marked)."""
    for volume_id in volume_ids:
        for wait_s in (0,) + run_module.Rollback.RETRY_S:
            if wait_s:
                clock.sleep(wait_s)
            try:
                cinder.volumes.set_metadata(volume_id,
                                            {properties.DELIVERED: 'True'})
                break
            except Exception as e:
                if not run_module.transient(e) or \
                        wait_s == run_module.Rollback.RETRY_S[-1]:
                    raise


def _delivered(volume):
    return bool((volume.metadata or {}).get(properties.DELIVERED))


def _undo_volume(cinder, run_id, tag, found, clock):
    """Delete the volume made for ``tag``: the one Cinder answered with,
    or the ones carrying this run's tags when the answer was lost. Waits
    for Cinder to finish making it (it refuses to delete it before). A
    volume marked delivered is the user's: never deleted."""
    ids = [found['id']] if found.get('id') else [
        v.id for v in tagged_volumes(cinder, run_id)
        if (v.metadata or {}).get(properties.RESTORED_FROM) == tag]
    for volume_id in ids:
        try:
            volume = cinder.volumes.get(volume_id)
        except cinder_exceptions.NotFound:
            continue
        if (volume.metadata or {}).get(properties.RUN) != run_id:
            LOG.error('Volume %s is not of run %s: kept', volume_id, run_id)
            continue
        if _delivered(volume):
            LOG.warning('Volume %s was delivered: kept', volume_id)
            continue
        if volume.status in MAKING + ATTACHING:
            _wait_for_volume_settled(cinder, volume_id, clock,
                                     MAKING + ATTACHING)
        cinder.volumes.delete(volume_id)


def _read_volume(cinder, volume_id, clock, deadline):
    """The volume, read again after a dropped connection or a Cinder
    restarting (a poll is safe to repeat) until ``deadline``."""
    while True:
        try:
            return cinder.volumes.get(volume_id)
        except Exception as e:
            if not run_module.transient(e) or clock.now() >= deadline:
                raise
            LOG.info('Reading volume %s again: %s', volume_id, e)
            clock.sleep(POLL_S)


def _wait_for_volume_settled(cinder, volume_id, clock, passing,
                             timeout_s=VOLUME_TIMEOUT_S):
    """Wait while the volume is in one of the ``passing`` states."""
    deadline = clock.now() + timeout_s
    while clock.now() < deadline:
        volume = _read_volume(cinder, volume_id, clock, deadline)
        if volume.status not in passing:
            return volume
        clock.sleep(POLL_S)
    return cinder.volumes.get(volume_id)


def _wait_for_volume(clients, volume_id, clock, timeout_s, wanted):
    deadline = clock.now() + timeout_s
    while True:
        volume = _read_volume(clients.cinder, volume_id, clock, deadline)
        if volume.status in wanted:
            return volume
        if volume.status.startswith('error'):
            raise errors.RestoreFailed('Cinder could not make volume %s '
                                       '(%s).' % (volume_id, volume.status))
        if clock.now() >= deadline:
            raise errors.RestoreFailed('Volume %s is still %s after %d s.'
                                       % (volume_id, volume.status,
                                          timeout_s))
        clock.sleep(POLL_S)


def _attach(clients, server_id, volume_id, clock, rollback):
    """Attach the volume to the server; the device it got."""
    resource = events.Resource(events.ATTACHMENT, volume_id)
    rollback.add(resource, _undo_attach, clients, server_id, volume_id,
                 clock)
    clients.nova.volumes.create_server_volume(server_id, volume_id)
    rollback.created(resource)
    volume = _wait_for_volume(clients, volume_id, clock, ATTACH_TIMEOUT_S,
                              ('in-use',))
    for attachment in volume.attachments or []:
        if attachment.get('server_id') == server_id:
            return attachment.get('device')
    return None


def _undo_attach(clients, server_id, volume_id, clock):
    """Detach the restored volume from ``server_id`` (an attach still on
    its way is let finish first), and wait until Cinder lets it go (its
    own undo deletes it next). A delivered volume stays attached."""
    volume = _wait_for_volume_settled(clients.cinder, volume_id, clock,
                                      ATTACHING, ATTACH_TIMEOUT_S)
    if _delivered(volume):
        return
    try:
        clients.nova.volumes.delete_server_volume(server_id, volume_id)
    except nova_exceptions.NotFound:
        return  # never attached there
    _wait_for_volume_settled(clients.cinder, volume_id, clock,
                             ('in-use',) + ATTACHING, ATTACH_TIMEOUT_S)


def tagged_volumes(cinder, run_id):
    """The volumes of the caller's project tagged with ``run_id``."""
    return [v for v in cinder.volumes.list(search_opts={
        'metadata': {properties.RUN: run_id}})
        if (v.metadata or {}).get(properties.RUN) == run_id]


def recover(clients, run_id, set_id, attach_to=None,
            clock=window_module.Clock):
    """Finish or undo the restore of set ``set_id`` by a run whose
    process died.

    Volumes are marked delivered only once every one was made and
    attached: if any is, the restore was done, and the rest are marked
    too. Returns ({device: 'attached' | 'restored'}, [], []) then; else
    (None, deleted, failures) once every volume of the run is detached
    from ``attach_to`` and deleted (undos the service could not answer are
    retried, as a run's rollback's are; a volume attached to any other
    server is left, as a failure).
    """
    volumes = [v for v in tagged_volumes(clients.cinder, run_id)
               if (v.metadata.get(properties.RESTORED_FROM) or '').split(
                   ' ', 1)[0] == set_id]
    if any(_delivered(v) for v in volumes):
        _deliver(clients.cinder, [v.id for v in volumes], clock)
        return {_device(v): 'attached' if v.status == 'in-use'
                else 'restored' for v in volumes}, [], []
    rollback = run_module.Rollback(clock=clock)
    refused = []
    for volume in volumes:
        elsewhere = {a.get('server_id') for a in volume.attachments or []
                     } - {attach_to}
        if elsewhere:  # someone attached it: not the run's to take away
            refused.append('volume %s: attached to %s' % (
                volume.id, ', '.join(sorted(elsewhere))))
            continue
        rollback.add(events.Resource(events.VOLUME, volume.id), _undo_volume,
                     clients.cinder, run_id, None, {'id': volume.id}, clock)
        if attach_to:  # attached there, or on its way: detached first
            rollback.add(events.Resource(events.ATTACHMENT, volume.id),
                         _undo_attach, clients, attach_to, volume.id, clock)
    rollback.run()
    failures = refused + rollback.failures
    return None, ['volume %s' % v.id for v in volumes
                  if not any(v.id in f for f in failures)], failures


def _device(volume):
    return (volume.metadata.get(properties.RESTORED_FROM) or ' ?').split(
        ' ', 1)[1]
