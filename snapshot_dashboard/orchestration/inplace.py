"""Restoring a server in place to one of its sets, drive by drive (no
Django).

With the caller's own rights, through Nova, Cinder and Glance, and the
compute-side agent for local disks:

1. a new volume is made from the set's snapshot of each chosen volume
   (and a volume-backed root's temporary image, see 5), while the server
   runs: what takes long comes before the server is touched;
2. a *safety set* of the drives about to be replaced is taken (the server
   as it is, tagged ``properties.UNDO_OF`` the run): restoring it undoes
   the restore. Nothing of the server changes without it;
3. the server is stopped at once (and started again at the end if it
   ran);
4. each replaced volume is detached (kept: renamed at the end, tagged
   ``properties.REPLACED_BY``) and its new volume attached in its place,
   at the same device;
5. an image-backed root is rebuilt by Nova from the set's root image
   (attached volumes stay); a volume-backed root is re-imaged by Nova's
   rebuild (API 2.93) from a temporary image Cinder makes of the set's
   root snapshot, removed after. A rebuild blanks the ephemeral disk, so
   the ephemeral disks the restore does not replace are in the safety set
   and written back from it;
6. each chosen ephemeral disk is written back from the set's copy by the
   agent, while the server is shut off.

Every change registers its undo first: a failure puts the server back as
it was (old volumes at their devices, root and ephemeral disks from the
safety set, running again if it ran) and removes everything the restore
made, the safety set last (kept if any undo of the server failed: it
holds the drives as they were). Once the server is restored nothing is
undone. Where Nova cannot rebuild a volume-backed
server (before 2.93), its root is refused, naming what can be done
instead.
"""

import dataclasses
import datetime
import functools
import logging
import uuid

from keystoneauth1 import exceptions as ks_exceptions
from novaclient import exceptions as nova_exceptions

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import microversions
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import restore
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)

SERVER_TIMEOUT_S = 600  # a stop, start or rebuild
POLL_S = 2
RESTORABLE = ('ACTIVE', 'SHUTOFF')
VOLUME_BACKED_ROOT = ('this cloud\'s Nova cannot rebuild a volume-backed '
                      'server (API 2.93), so its root cannot be restored in '
                      'place: launch the set as a new server, or restore '
                      'this drive as a new volume')
IMAGE_TIMEOUT_S = 1800  # Cinder uploading a root volume to Glance
# What the safety set's own events tell the restore's recorder: the window
# it holds (to be closed by a recovery), and what it creates.
SAFETY_SET_STEPS = (events.OPEN_WINDOW, events.CLOSE_WINDOW, events.RESOURCE)


@dataclasses.dataclass(frozen=True)
class InPlacePlan:
    snapshot_set: sets.SnapshotSet
    server_id: str
    server_name: str
    was_running: bool
    # (drive of the set, the server's device at that name now)
    volumes: tuple = ()
    root: sets.Drive | None = None  # rebuilt (image-backed or a volume)
    ephemerals: tuple = ()  # drives of the set written back
    # The server's ephemeral devices a root rebuild blanks that are not
    # restored from the set: written back from the safety set.
    kept_ephemerals: tuple = ()

    @property
    def drives(self):
        return tuple(d for d, _ in self.volumes) + (
            (self.root,) if self.root else ()) + self.ephemerals

    @property
    def safety_devices(self):
        """The server's drives the restore replaces, and the ephemeral
        disks a root rebuild blanks."""
        return sorted({d.name for d in self.drives}
                      | {d.name for d in self.kept_ephemerals})

    def changes(self):
        """What the restore will do, in words, in its order."""
        lines = ['A safety set of %s is taken first: restoring it undoes '
                 'this restore.' % ', '.join(self.safety_devices)]
        if self.was_running:
            lines.append('The server is stopped, and started again at the '
                         'end.')
        for drive, now in self.volumes:
            lines.append('%s: volume %s is replaced by a new volume made '
                         'from the set\'s snapshot; %s is detached and kept.'
                         % (drive.name, now.volume_name or now.volume_id,
                            now.volume_name or now.volume_id))
        if self.root is not None and self.root.snapshot_id:
            lines.append('%s: the root volume is re-imaged by Nova from the '
                         'set\'s snapshot (through a temporary image).'
                         % self.root.name)
        elif self.root is not None:
            lines.append('%s: rebuilt by Nova from the set\'s root image.'
                         % self.root.name)
        for drive in self.ephemerals:
            lines.append('%s: written back from the set\'s copy.'
                         % drive.name)
        for device in self.kept_ephemerals:
            lines.append('%s: blanked by the rebuild, so written back as it '
                         'is now (from the safety set).' % device.name)
        return lines


def plan_in_place(clients, set_id, devices=None, has_agent=True):
    """What restoring ``devices`` (None: every drive) of the set into its
    server would change; raises a SnapshotSetError (nothing changed) when
    it cannot be done."""
    snapshot_set = sets.get_set(clients, set_id)
    if snapshot_set.status != sets.AVAILABLE:
        raise errors.SetNotUsable(set_id, snapshot_set.status)
    server, attachments, volumes = plan_module.read_server(
        clients, snapshot_set.server_id)
    plan_module.check_owner(server, clients.project_id)
    task_state = server.get('OS-EXT-STS:task_state')
    if server['status'] not in RESTORABLE or task_state:
        raise errors.ServerNotRestorable(
            server.get('name') or server['id'], server['status'], task_state)
    _, current = plan_module.list_devices(server, attachments, volumes)
    current = {d.name: d for d in current}
    drives = {d.name: d for d in snapshot_set.drives}
    chosen = (list(drives) if devices is None else list(dict.fromkeys(
        plan_module.normalize_device_name(name) for name in devices)))
    if not chosen:
        raise errors.NothingSelected()
    unknown = set(chosen) - set(drives)
    if unknown:
        raise errors.UnknownDevices(unknown, drives)

    refused = {}
    volume_drives, root, ephemerals = [], None, []
    for name in chosen:
        drive, now = drives[name], current.get(name)
        if now is None:
            refused[name] = ('the server has no drive there now: restore it '
                             'as a new volume attached to the server')
        elif now.kind != drive.kind:
            refused[name] = ('the server\'s drive there is now a %s, not a '
                             '%s' % (now.kind, drive.kind))
        elif not (drive.snapshot_id or drive.image_id):
            refused[name] = 'the set holds nothing for it'
        elif drive.kind == plan_module.VOLUME:
            volume_drives.append((drive, now))
        elif drive.kind == plan_module.ROOT_IMAGE:
            root = drive
        elif drive.kind == plan_module.ROOT_VOLUME:
            if clients.nova_supports(
                    microversions.NOVA_REIMAGE_BOOT_VOLUME):
                root = drive
            else:
                refused[name] = VOLUME_BACKED_ROOT
        elif now.size_gb < drive.size_gb:
            refused[name] = ('the server\'s ephemeral disk (%d GB) is smaller '
                             'than the copy (%d GB)' % (now.size_gb,
                                                        drive.size_gb))
        else:
            ephemerals.append(drive)
    kept = ()
    if root is not None:
        kept = tuple(d for d in current.values()
                     if d.kind == plan_module.EPHEMERAL
                     and d.name not in {e.name for e in ephemerals})
    if not has_agent:
        for drive in ephemerals:
            refused[drive.name] = ('an ephemeral disk is written back by the '
                                   'compute-side agent, which cannot be '
                                   'reached')
        for device in kept:
            refused[root.name] = (
                'rebuilding the root blanks the ephemeral disk %s, which only '
                'the compute-side agent (not reachable) can keep'
                % device.name)
    if server['status'] == 'SHUTOFF':
        # The safety set copies local disks from the running guest.
        local = [d.name for d in ephemerals] + ([root.name] if root and (
            root.kind == plan_module.ROOT_IMAGE or kept) else [])
        for name in local:
            refused[name] = ('the server is shut off, and the safety set '
                             'copies its local disks while it runs: start '
                             'it first')
    if refused:
        raise errors.CannotRestoreInPlace(refused)
    # A root volume is re-imaged through a temporary volume of its size.
    restore._check_quota(clients, [d for d, _ in volume_drives] + (
        [root] if root is not None and root.snapshot_id else []))
    return InPlacePlan(
        snapshot_set=snapshot_set, server_id=server['id'],
        server_name=server.get('name') or server['id'],
        was_running=server['status'] == 'ACTIVE',
        volumes=tuple(sorted(volume_drives, key=lambda v: v[0].name)),
        root=root, ephemerals=tuple(ephemerals), kept_ephemerals=kept)


def preview(clients, set_id):
    """The plan of restoring every drive of the set that can be (None if
    none can), and why the others cannot ({drive: reason})."""
    try:
        return plan_in_place(clients, set_id), {}
    except errors.CannotRestoreInPlace as e:
        refused = e.reasons
    drives = [d.name for d in sets.get_set(clients, set_id).drives
              if d.name not in refused]
    if not drives:
        return None, refused
    return plan_in_place(clients, set_id, drives), refused


def _locate_agent(clients, server_id, agent_locator):
    if agent_locator is None:
        return None
    try:
        agent = agent_locator.for_server(clients, server_id)
    except Exception:
        LOG.exception('Could not locate the agent of %s', server_id)
        return None
    return agent if agent_module.probe(agent, server_id) else None


def restore_in_place(clients, set_id, devices=None, run_id=None,
                     progress=None, clock=window_module.Clock,
                     agent_locator=None,
                     budget_s=run_module.DEFAULT_BUDGET_S):
    """Restore ``devices`` (None: every drive) of the set into its server,
    in place, and return the safety set (its undo). Raises a
    SnapshotSetError with the server put back as it was and everything the
    restore made removed (``rollback_failures`` names what could not be)."""
    report = functools.partial(run_module.report, progress)
    report(events.PLAN, events.STARTED)
    server_id = sets.get_set(clients, set_id).server_id
    agent = _locate_agent(clients, server_id, agent_locator)
    plan = plan_in_place(clients, set_id, devices, agent is not None)
    report(events.PLAN, events.DONE,
           drives=tuple(d.name for d in plan.drives))
    run_id = run_id or str(uuid.uuid4())
    # Each undo retries itself before the next runs (their order is what
    # puts drives back at their devices): no second pass.
    rollback = run_module.Rollback(on_add=lambda resource: report(
        events.RESOURCE, events.DONE, resource=resource), clock=clock,
        retry_s=())
    steps = _Steps(clients, plan, run_id, agent, rollback, clock, report)
    try:
        # What takes long comes first, so that the safety set is as the
        # drives are when the server stops, moments later.
        steps.make_volumes()
        steps.make_root_image()
        safety = steps.take_safety_set(agent_locator, budget_s, progress)
        steps.stop()
        steps.swap_volumes()
        steps.restore_local_disks(safety)
        steps.start()
    except errors.Superseded:
        raise  # the new owner of the run rolls it back
    except BaseException as e:
        report(events.ROLLBACK, events.STARTED, message=str(e))
        rollback.run()
        report(events.ROLLBACK,
               events.FAILED if rollback.failures else events.DONE,
               message='; '.join(rollback.failures) or
               'the server is as it was; nothing the restore made is left')
        if not isinstance(e, Exception) or isinstance(
                e, ks_exceptions.Unauthorized):
            raise  # a process stopped, or the run's permission gone
        raise restore.failed(e, rollback.failures,
                             'The server could not be restored') from e
    # Done: from here on nothing is undone; a mark that cannot be written
    # is only logged (attached volumes are never reaped).
    steps.deliver()
    return safety


class _Steps:
    """The steps of one restore in place, each registering its undo."""

    def __init__(self, clients, plan, run_id, agent, rollback, clock,
                 report):
        self.clients = clients
        self.plan = plan
        self.run_id = run_id
        self.agent = agent
        self.rollback = rollback
        self.clock = clock
        self.report = report
        self.new_volumes = {}  # device -> new volume id
        self.safety = None
        self.rebuild_asked = False
        self.undo_failed = False  # the safety set is then kept
        self.root_image = None  # a root volume's temporary image

    def take_safety_set(self, agent_locator, budget_s, progress):
        plan = self.plan
        self.report(events.SAFETY_SET, events.STARTED,
                    drives=tuple(plan.safety_devices))
        # Registered before anything of the server changes, so it is
        # undone after every undo that may need what it holds.
        self.rollback.add(events.Resource(events.SAFETY_SET_KIND,
                                          'of %s' % plan.server_id),
                          self._retrying(self._delete_safety_set))
        when = datetime.datetime.now(datetime.timezone.utc)
        try:
            self.safety = run_module.create_snapshot_set(
                self.clients, plan.server_id, devices=plan.safety_devices,
                name='%s before restore of %s' % (
                    plan.server_name, plan.snapshot_set.name or
                    plan.snapshot_set.id),
                description='Taken on %s before restoring %s in place; '
                'restore it to undo that restore.' % (
                    when.strftime('%Y-%m-%dT%H:%M:%SZ'), plan.snapshot_set.id),
                wait=True, progress=_only(progress, SAFETY_SET_STEPS),
                clock=self.clock, agent_locator=agent_locator,
                run_id=self.run_id, budget_s=budget_s, undo_of=self.run_id)
        except errors.SnapshotSetError as e:
            raise errors.RestoreFailed(
                'The safety set (the restore\'s undo) could not be taken, '
                'so nothing was changed: %s' % e) from e
        self.report(events.SAFETY_SET, events.DONE, set_id=self.safety.id)
        return self.safety

    def _delete_safety_set(self):
        if self.safety is None:
            return  # create_snapshot_set removed what it made
        if self.undo_failed:
            raise errors.RestoreFailed(
                'kept: the server could not be put back entirely, and set '
                '%s holds its drives as they were' % self.safety.id)
        try:
            sets.delete_set(self.clients, self.safety.id)
        except errors.SetNotFound:
            pass

    def make_volumes(self):
        for drive, now in self.plan.volumes:
            self.report(events.RESTORE, events.STARTED, device=drive.name)
            self.new_volumes[drive.name] = restore._new_volume(
                self.clients, self.plan, drive, self.run_id,
                _Retrying(self), self.clock,
                extra_metadata={properties.REPLACES: now.volume_id})
        for drive, _ in self.plan.volumes:
            restore._wait_for_volume(self.clients, self.new_volumes[
                drive.name], self.clock, restore.VOLUME_TIMEOUT_S,
                ('available',))
            self.report(events.RESTORE, events.DONE, device=drive.name)

    def stop(self):
        if not self.plan.was_running:
            return
        self.report(events.STOP, events.STARTED)
        self.rollback.add(events.Resource(events.STOPPED,
                                          self.plan.server_id),
                          self._undo(self._start_again))
        self.clients.nova.servers.stop(self.plan.server_id)
        wait_for_server(self.clients, self.plan.server_id, self.clock,
                        'SHUTOFF')
        self.report(events.STOP, events.DONE)

    def _start_again(self):
        server = wait_for_server(self.clients, self.plan.server_id,
                                 self.clock, None)
        if server.status == 'SHUTOFF':
            self.clients.nova.servers.start(self.plan.server_id)
            wait_for_server(self.clients, self.plan.server_id, self.clock,
                            'ACTIVE')

    def swap_volumes(self):
        server_id = self.plan.server_id
        # Detached last device first, so that the undos (newest first)
        # attach them again in device order, each at its own name.
        for drive, now in reversed(self.plan.volumes):
            self.report(events.DETACH, events.STARTED, device=drive.name)
            resource = events.Resource(events.DETACHMENT, now.volume_id)
            self.rollback.add(resource, self._undo(self._reattach),
                              now.volume_id, drive.name)
            self.clients.nova.volumes.delete_server_volume(server_id,
                                                           now.volume_id)
            self.rollback.created(resource)
            restore._wait_for_volume(self.clients, now.volume_id, self.clock,
                                     restore.ATTACH_TIMEOUT_S,
                                     ('available',))
            self.report(events.DETACH, events.DONE, device=drive.name)
        # In device order: Nova's libvirt driver gives each the first free
        # name, which is then the one its old volume had.
        for drive, _ in self.plan.volumes:
            self.report(events.ATTACH, events.STARTED, device=drive.name)
            # Its undo (detach) is one the safety set waits for.
            attached_as = restore._attach(
                self.clients, server_id, self.new_volumes[drive.name],
                self.clock, _Retrying(self, critical=True))
            if attached_as != drive.name:
                raise errors.RestoreFailed(
                    'Nova attached the new volume of %s as %s.'
                    % (drive.name, attached_as))
            self.report(events.ATTACH, events.DONE, device=drive.name)

    def _reattach(self, volume_id, device):
        """Attach the replaced volume again, at ``device`` where it was
        (every newer volume is detached by then); anywhere else is a
        failure, which keeps the safety set."""
        volume = restore._wait_for_volume_settled(
            self.clients.cinder, volume_id, self.clock, restore.ATTACHING,
            restore.ATTACH_TIMEOUT_S)
        here = [a for a in volume.attachments or []
                if a.get('server_id') == self.plan.server_id]
        if not here:  # detached: attached again
            self.clients.nova.volumes.create_server_volume(
                self.plan.server_id, volume_id)
            volume = restore._wait_for_volume(
                self.clients, volume_id, self.clock,
                restore.ATTACH_TIMEOUT_S, ('in-use',))
            here = [a for a in volume.attachments or []
                    if a.get('server_id') == self.plan.server_id]
        got = here[0].get('device') if here else None
        if got != device:
            raise errors.RestoreFailed(
                'volume %s is attached again as %s, not %s'
                % (volume_id, got, device))

    def restore_local_disks(self, safety):
        plan = self.plan
        if plan.root is not None:
            # Reported right before Nova is asked: what a recovery goes by.
            self.report(events.REBUILD, events.STARTED, device=plan.root.name)
            image_id = self.root_image or plan.root.image_id
            resource = events.Resource(events.REBUILT, plan.server_id)
            self.rollback.add(resource, self._undo(self._rebuild_back))
            self.rebuild_asked = True
            try:
                self._rebuild(plan.root, image_id)
            except nova_exceptions.ClientException:
                self.rebuild_asked = False  # refused: nothing changed
                raise
            self.rollback.created(resource)
            wait_for_rebuild(self.clients, plan.server_id, self.clock)
            self._shut_off()  # as it was when asked: written back next
            if image_id != plan.root.image_id:
                capture.delete_image(self.clients.glance, image_id)
            self.report(events.REBUILD, events.DONE, device=plan.root.name)
        safety_drives = {d.name: d for d in safety.drives}
        writes = [(d.name, d.image_id, True) for d in plan.ephemerals] + [
            (d.name, safety_drives[d.name].image_id, False)
            for d in plan.kept_ephemerals]
        for name, image_id, restored in writes:
            self.report(events.WRITE, events.STARTED,
                        device=name if restored else None,
                        message='%s from %s' % (name, 'the set' if restored
                                                else 'the safety set'))
            if restored:
                resource = events.Resource(events.WRITTEN, name)
                self.rollback.add(resource, self._undo(self._write_back),
                                  [name])
            self._write(name, image_id)
            self.report(events.WRITE, events.DONE,
                        device=name if restored else None)

    def _write(self, device, image_id):
        try:
            self.agent.write_drive(self.plan.server_id,
                                   device.rsplit('/', 1)[-1], image_id)
        except agent_module.AgentError as e:
            raise errors.RestoreFailed(
                'The compute-side agent could not write %s back: %s'
                % (device, e)) from e

    def make_root_image(self):
        """A root volume's temporary image, made from the set's snapshot
        before anything changes (it takes long)."""
        root = self.plan.root
        if root is None or not root.snapshot_id:
            return
        self.report(events.RESTORE, events.STARTED, device=root.name,
                    message='an image of the root\'s snapshot')
        self.root_image = self._image_of(self.plan.snapshot_set, root)
        self.rollback.add(events.Resource(events.IMAGE, self.root_image),
                          self._retrying(capture.delete_image),
                          self.clients.glance, self.root_image)
        self.report(events.RESTORE, events.DONE, device=root.name)

    def _retrying(self, undo, critical=False):
        """``undo``, tried again while the service does not answer (the
        waits of a run's rollback), before the next undo runs. A
        ``critical`` one that still fails keeps the safety set."""
        def retrying(*args):
            for wait_s in run_module.Rollback.RETRY_S + (None,):
                try:
                    return undo(*args)
                except errors.Superseded:
                    raise
                except Exception as e:
                    if wait_s is None or not run_module.transient(e):
                        if critical:
                            self.undo_failed = True
                        raise
                    LOG.info('Undo %s: trying again in %d s: %s',
                             getattr(undo, '__name__', undo), wait_s, e)
                    self.clock.sleep(wait_s)
        return retrying

    def _undo(self, undo):
        """A critical undo: one that puts the server back."""
        return self._retrying(undo, critical=True)

    def _shut_off(self, timeout_s=SERVER_TIMEOUT_S):
        """The server shut off. Nova's rebuild of a stopped server spawns
        it, shows it active with no task for a moment, then stops it
        itself; a rebuild from an error state leaves it on: stopped here,
        a stop Nova refuses because it is stopping it already tried
        again."""
        deadline = self.clock.now() + timeout_s
        while True:
            server = wait_for_server(self.clients, self.plan.server_id,
                                     self.clock, None, allow_error=True)
            if server.status == 'SHUTOFF':
                return
            if self.clock.now() >= deadline:
                raise errors.RestoreFailed('Server %s is still %s after %d '
                                           's.' % (self.plan.server_id,
                                                   server.status, timeout_s))
            try:
                self.clients.nova.servers.stop(self.plan.server_id)
            except nova_exceptions.Conflict:
                pass  # busy stopping: looked at again
            self.clock.sleep(POLL_S)

    def _write_back(self, devices):
        """Write the safety set's copies of ``devices`` back."""
        safety_drives = {d.name: d for d in self.safety.drives}
        self._shut_off()
        for device in devices:
            self._write(device, safety_drives[device].image_id)

    def _rebuild_back(self):
        """Rebuild the root from the safety set (from an error state if
        the rebuild failed there), and write back every ephemeral disk the
        rebuild blanked."""
        if not self.rebuild_asked:
            return
        root = {d.name: d for d in self.safety.drives}[self.plan.root.name]
        wait_for_server(self.clients, self.plan.server_id, self.clock, None,
                        allow_error=True)
        image_id = (self._image_of(self.safety, root) if root.snapshot_id
                    else root.image_id)
        try:
            self._rebuild(root, image_id)
            wait_for_rebuild(self.clients, self.plan.server_id, self.clock)
        finally:
            if image_id != root.image_id:
                capture.delete_image(self.clients.glance, image_id)
        self._shut_off()
        self._write_back([d.name for d in self.plan.ephemerals]
                         + [d.name for d in self.plan.kept_ephemerals])

    def _rebuild(self, root, image_id):
        """Ask Nova to rebuild the root from ``image_id``: a root volume
        through the microversion that re-images it."""
        nova = (self.clients.nova_at(microversions.NOVA_REIMAGE_BOOT_VOLUME)
                if root.snapshot_id else self.clients.nova)
        nova.servers.rebuild(self.plan.server_id, image_id)

    def _image_of(self, source, drive):
        """A temporary Glance image (tagged with the run) of the volume
        snapshot of ``drive`` in set ``source``, made by Cinder from a
        temporary volume, which is deleted before this returns."""
        cinder, glance = self.clients.cinder, self.clients.glance
        tag = '%s %s' % (source.id, drive.name)
        name = ('%s %s (temporary)' % (source.name, drive.name))[:255]
        found, image = {}, {}
        try:
            volume = cinder.volumes.create(
                drive.size_gb or 1, snapshot_id=drive.snapshot_id, name=name,
                metadata={properties.RUN: self.run_id,
                          properties.RESTORED_FROM: tag,
                          properties.TEMPORARY: 'True'})
            found['id'] = volume.id
            restore._wait_for_volume(self.clients, volume.id, self.clock,
                                     restore.VOLUME_TIMEOUT_S, ('available',))
            # Cinder copies a volume's image metadata onto the image it
            # uploads: tagged from its start, found by a recovery or the
            # reaper whatever happens next.
            cinder.volumes.set_image_metadata(volume.id, {
                properties.RUN: self.run_id, properties.TEMPORARY: 'True'})
            _, body = cinder.volumes.upload_to_image(
                volume.id, False, name, 'bare', 'qcow2', 'private', False)
            image['id'] = body['os-volume_upload_image']['image_id']
            glance.images.update(image['id'], **{
                properties.RUN: self.run_id, properties.TEMPORARY: 'True'})
            _wait_for_image(glance, image['id'], self.clock)
            restore._wait_for_volume(self.clients, volume.id, self.clock,
                                     restore.VOLUME_TIMEOUT_S, ('available',))
            return image['id']
        except BaseException:
            if image:
                capture.delete_image(glance, image['id'])
            raise
        finally:
            restore._undo_volume(cinder, self.run_id, tag, found, self.clock)

    def start(self):
        if not self.plan.was_running:
            return
        self.report(events.START, events.STARTED)
        self.clients.nova.servers.start(self.plan.server_id)
        wait_for_server(self.clients, self.plan.server_id, self.clock,
                        'ACTIVE')
        self.report(events.START, events.DONE)

    def deliver(self):
        """The new volumes are the user's, the restore is done (marked on
        its safety set, for a restore that replaced no volume), the
        replaced volumes are renamed for what they are. Nothing here
        undoes anything: a mark that cannot be written is logged."""
        try:
            restore._deliver(self.clients.cinder,
                             list(self.new_volumes.values()), self.clock)
            self.clients.glance.images.update(
                self.safety.id, **{properties.DELIVERED: 'True'})
        except Exception:
            LOG.exception('Restore %s is done but could not be marked so',
                          self.run_id)
        when = datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M')
        for _, now in self.plan.volumes:
            name = '%s (replaced by %s, %s)' % (
                now.volume_name or now.volume_id, self.plan.snapshot_set.name
                or self.plan.snapshot_set.id, when)
            try:
                self.clients.cinder.volumes.update(now.volume_id,
                                                   name=name[:255])
                self.clients.cinder.volumes.set_metadata(
                    now.volume_id, {properties.REPLACED_BY: self.run_id})
            except Exception:
                LOG.exception('Could not rename replaced volume %s',
                              now.volume_id)


class _Retrying:
    """A rollback whose undos retry themselves (``_Steps._retrying``),
    for the functions of ``restore`` that register their own."""

    def __init__(self, steps, critical=False):
        self.steps = steps
        self.critical = critical

    def add(self, resource, undo, *args):
        self.steps.rollback.add(
            resource, self.steps._retrying(undo, self.critical), *args)

    def created(self, resource):
        self.steps.rollback.created(resource)


def _only(progress, steps):
    """``progress`` hearing only the events of ``steps``."""
    if progress is None:
        return None

    def forward(event):
        if event.step in steps:
            progress(event)
    return forward


def wait_for_server(clients, server_id, clock, status,
                    timeout_s=SERVER_TIMEOUT_S, allow_error=False):
    """The server once no task runs on it (and, with ``status``, it is
    that); an ERROR state (unless ``allow_error``), or still not there
    after ``timeout_s``, is a RestoreFailed."""
    deadline = clock.now() + timeout_s
    while True:
        try:
            server = clients.nova.servers.get(server_id)
        except nova_exceptions.NotFound:
            raise errors.ServerNotFound(server_id) from None
        except Exception as e:
            if not run_module.transient(e) or clock.now() >= deadline:
                raise
            server = None
        if server is not None:
            task_state = getattr(server, 'OS-EXT-STS:task_state', None)
            if not task_state:
                if server.status == 'ERROR' and not allow_error:
                    fault = getattr(server, 'fault', None) or {}
                    raise errors.RestoreFailed(
                        'Server %s went into error: %s' % (
                            server_id, fault.get('message') or 'no reason '
                            'given'))
                if status is None or server.status == status or (
                        allow_error and server.status == 'ERROR'):
                    return server
            if clock.now() >= deadline:
                raise errors.RestoreFailed(
                    'Server %s is still %s (%s) after %d s.' % (
                        server_id, server.status, task_state or 'no task',
                        timeout_s))
        clock.sleep(POLL_S)


def _wait_for_image(glance, image_id, clock, timeout_s=IMAGE_TIMEOUT_S):
    deadline = clock.now() + timeout_s
    while True:
        status = glance.images.get(image_id)['status']
        if status == 'active':
            return
        if status in ('killed', 'deleted', 'deactivated'):
            raise errors.RestoreFailed('Cinder could not upload image %s '
                                       '(%s).' % (image_id, status))
        if clock.now() >= deadline:
            raise errors.RestoreFailed('Image %s is still %s after %d s.'
                                       % (image_id, status, timeout_s))
        clock.sleep(POLL_S)


def wait_for_rebuild(clients, server_id, clock):
    """The server once Nova's rebuild of its image-backed root is done (a
    shut-off server stays shut off)."""
    try:
        return wait_for_server(clients, server_id, clock, None)
    except errors.RestoreFailed as e:
        raise errors.RestoreFailed('Nova could not rebuild the root disk: '
                                   '%s' % e) from e


def safety_set_of(clients, run_id):
    """The usable safety set the restore run ``run_id`` took, or None."""
    for image in clients.glance.images.list(
            filters={properties.UNDO_OF: run_id}):
        snapshot_set = sets.SnapshotSet.from_image(image)
        if snapshot_set is not None and snapshot_set.undo_of == run_id:
            found = sets.get_set(clients, snapshot_set.id)
            if found.status == sets.AVAILABLE:
                return found
    return None


def recover(clients, run_id, set_id, started, agent_locator=None,
            clock=window_module.Clock):
    """Finish or undo the restore in place of set ``set_id`` by run
    ``run_id``, whose process died; ``started`` are the steps it recorded
    starting (``events.STOP``, ``events.REBUILD``, ...) and, for
    ``events.WRITE``, the devices.

    New volumes are marked delivered only once the restore was done: if
    any is, the server is started again if it ran and ``('finished',
    safety set, [])`` is returned. Else, once a safety set was taken, the
    server is put back from it as the run's own rollback would (what was
    written or rebuilt, the replaced volumes at their devices, started if
    it ran), the new volumes and the safety set deleted: ``('undone',
    None, failures)``. Without a safety set nothing was changed yet:
    ``('untouched', None, [])`` (the run's leftovers are the caller's to
    remove).
    """
    tagged = restore.tagged_volumes(clients.cinder, run_id)
    temporary = [v for v in tagged if v.metadata.get(properties.TEMPORARY)]
    volumes = sorted(
        (v for v in tagged if v not in temporary and (v.metadata.get(
            properties.RESTORED_FROM) or '').split(' ', 1)[0] == set_id),
        key=restore._device)
    safety = safety_set_of(clients, run_id)
    server_id = (safety or sets.get_set(clients, set_id)).server_id
    was_running = events.STOP in started
    done = safety is not None and clients.glance.images.get(
        safety.id).get(properties.DELIVERED) == 'True'
    if done or any(restore._delivered(v) for v in volumes):
        restore._deliver(clients.cinder, [v.id for v in volumes], clock)
        if was_running:
            server = wait_for_server(clients, server_id, clock, None)
            if server.status == 'SHUTOFF':
                clients.nova.servers.start(server_id)
                wait_for_server(clients, server_id, clock, 'ACTIVE')
        return 'finished', safety, []
    if safety is None:
        return 'untouched', None, []
    safety_drives = {d.name: d for d in safety.drives}
    root = next((d for d in safety.drives
                 if d.kind in (plan_module.ROOT_IMAGE,
                               plan_module.ROOT_VOLUME)), None)
    written = tuple(sets.Drive(name, plan_module.EPHEMERAL, 0)
                    for name in started.get(events.WRITE, ())
                    if name in safety_drives)
    rebuilt = events.REBUILD in started and root is not None
    plan = InPlacePlan(
        snapshot_set=safety, server_id=server_id, server_name=server_id,
        was_running=was_running,
        volumes=tuple((sets.Drive(restore._device(v), plan_module.VOLUME, 0),
                       plan_module.Device(
                           restore._device(v), plan_module.VOLUME, 0,
                           volume_id=v.metadata.get(properties.REPLACES)))
                      for v in volumes),
        root=root if rebuilt else None, ephemerals=written,
        kept_ephemerals=tuple(
            d for d in safety.drives if rebuilt
            and d.kind == plan_module.EPHEMERAL
            and d.name not in {w.name for w in written}))
    agent = (_locate_agent(clients, server_id, agent_locator)
             if plan.root or written else None)
    rollback = run_module.Rollback(clock=clock, retry_s=())
    steps = _Steps(clients, plan, run_id, agent, rollback, clock,
                   lambda *args, **kwargs: None)
    steps.safety = safety
    steps.rebuild_asked = rebuilt
    # As restore_in_place registers them: undone newest first.
    for volume in volumes + temporary:
        rollback.add(events.Resource(events.VOLUME, volume.id),
                     steps._retrying(restore._undo_volume), clients.cinder,
                     run_id, None, {'id': volume.id}, clock)
    for image in capture.tagged_images(clients.glance, run_id):
        if image.get(properties.TEMPORARY):
            rollback.add(events.Resource(events.IMAGE, image['id']),
                         steps._retrying(capture.delete_image),
                         clients.glance, image['id'])
    rollback.add(events.Resource(events.SAFETY_SET_KIND, safety.id),
                 steps._retrying(steps._delete_safety_set))
    if was_running:
        rollback.add(events.Resource(events.STOPPED, server_id),
                     steps._undo(steps._start_again))
    for drive, now in reversed(plan.volumes):
        if now.volume_id:
            rollback.add(events.Resource(events.DETACHMENT, now.volume_id),
                         steps._undo(steps._reattach), now.volume_id,
                         drive.name)
    for volume in volumes:
        rollback.add(events.Resource(events.ATTACHMENT, volume.id),
                     steps._undo(restore._undo_attach), clients, server_id,
                     volume.id, clock)
    if rebuilt:
        rollback.add(events.Resource(events.REBUILT, server_id),
                     steps._undo(steps._rebuild_back))
    elif written:
        rollback.add(events.Resource(events.WRITTEN, ', '.join(
            w.name for w in written)), steps._undo(steps._write_back),
            [w.name for w in written])
    rollback.run()
    return 'undone', None, rollback.failures
