"""Running a snapshot set: plan, pre-flight, window, capture, package.

Every step that creates something registers its undo; on any failure the
window is closed first, then the undos run newest first, and the original
error is raised. An undo that fails is logged and recorded on the error
(``rollback_failures``), never raised over it.
"""

import concurrent.futures
import dataclasses
import datetime
import io
import logging
import threading
import uuid

from glanceclient import exc as glance_exceptions
from keystoneauth1 import exceptions as ks_exceptions
from oslo_utils import excutils

from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import package
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import preflight
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 60
# Inside the window a poll round is one request at any number of drives
# (``Capturer.reached_all``): polled often, the instant is seen soon.
POLL_S = 0.05
# An upload is polled soon at first, then less and less often: a short one
# is seen done soon, a long one costs few requests.
UPLOAD_POLL_S = (0.25, 1.5, 5)  # first, factor, most
UPLOAD_TIMEOUT_S = 3600
STALLED_UPLOAD_S = 60


class Rollback:
    """Undo callables, run newest first; failures are kept, not raised.

    An undo is registered *before* the call that creates what it undoes,
    so a create whose response is lost is undone too (the undo then finds
    what was made by its tags). An undo that fails (a service restarting)
    is tried again after each of ``retry_s`` seconds; what still fails is
    kept in ``failures`` (the reaper removes it later). ``on_add(resource)``
    hears of every resource created (``created``), for a durable record of
    the run.
    """

    RETRY_S = (1, 2, 4, 8, 15)

    def __init__(self, on_add=None, clock=window_module.Clock,
                 retry_s=RETRY_S):
        self._undos = []
        self._lock = threading.Lock()
        self.failures = []
        self.on_add = on_add
        self.clock = clock
        self.retry_s = retry_s

    def add(self, resource, undo, *args):
        """Register the undo of ``resource``, an ``events.Resource`` (its id
        may stand for what is about to be made); ``created`` reports it."""
        with self._lock:
            self._undos.append((resource, undo, args))

    def created(self, resource):
        if self.on_add is not None:
            self.on_add(resource)

    def run(self):
        with self._lock:
            pending, self._undos = self._undos[::-1], []
        for wait_s in (0,) + tuple(self.retry_s):
            if not pending:
                break
            if wait_s:
                self.clock.sleep(wait_s)
            failed = []
            for resource, undo, args in pending:
                try:
                    undo(*args)
                except errors.Superseded:
                    raise  # the run is another process's: it undoes
                except Exception as e:
                    LOG.warning('Rollback could not remove %s: %s',
                                resource, e)
                    failed.append((resource, undo, args, e))
            self.failures = ['%s: %s' % (resource, e)
                             for resource, _, _, e in failed]
            # Only a service that did not answer is worth asking again.
            pending = [f[:3] for f in failed if transient(f[3])]


def transient(error):
    """Whether ``error`` says the service could not be reached or was
    unavailable (restarting), rather than refusing."""
    if isinstance(error, (ks_exceptions.ConnectFailure,
                          ks_exceptions.ConnectionError,
                          ks_exceptions.ServiceUnavailable,
                          ks_exceptions.GatewayTimeout,
                          ks_exceptions.BadGateway,
                          glance_exceptions.CommunicationError,
                          glance_exceptions.HTTPServiceUnavailable,
                          ConnectionError)):
        return True
    return getattr(error, 'code', None) in (502, 503, 504) or getattr(
        error, 'http_status', None) in (502, 503, 504)


def report(progress, step, state, required=False, **fields):
    """Tell ``progress`` of a step. A callback that fails is logged and
    the run goes on, unless the record is ``required`` before the step (a
    window's intent) or the callback says the run is no longer this
    process's (``errors.Superseded``)."""
    if progress is None:
        return
    try:
        progress(events.Event(step, state, **fields))
    except errors.Superseded:
        raise
    except Exception:
        LOG.exception('Progress callback failed on %s %s', step, state)
        if required:
            raise


def default_set_name(plan, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return '%s %s' % (plan.server_name or plan.server_id,
                      now.strftime('%Y-%m-%dT%H:%M:%SZ'))


def plan_snapshot_set(clients, server_id, devices=None, capturers=None,
                      agent_locator=None):
    """The plan for ``devices`` (None: every drive that can be captured)
    with ``capturers`` (a capture.Capturers), or those the server's agent
    (found with ``agent_locator``) and the cloud offer."""
    if capturers is None:
        capturers = capture.locate(clients, capture.RunContext('', server_id),
                                   agent_locator)
    return plan_module.load_plan(clients, server_id, selection=devices,
                                 cannot_capture=capturers.cannot_capture)


def create_snapshot_set(clients, server_id, devices=None, name=None,
                        description='', consistency=window_module.AUTO,
                        budget_s=DEFAULT_BUDGET_S, wait=False, progress=None,
                        clock=window_module.Clock, agent_locator=None,
                        run_id=None, schedule_id=None, undo_of=None):
    """Take one snapshot set of a server and return it.

    Returns when every drive is captured and the set's image is written;
    with ``wait`` only once the set is usable (the root image uploaded).
    ``agent_locator`` (an AgentLocator) finds the server's compute-side
    agent. ``run_id`` tags everything the run creates (a new id by
    default): a durable run passes its own, so ``recovery`` can find its
    leftovers. ``schedule_id`` marks the set as the schedule's, for its
    retention. ``undo_of`` marks it as the safety set of that restore run.
    ``progress`` hears every step as an ``events.Event``.
    Raises a SnapshotSetError subclass, with nothing left behind.
    """
    report(progress, events.PLAN, events.STARTED)
    context = capture.RunContext(run_id or str(uuid.uuid4()), server_id,
                                 clock=clock, description=description or '')
    server, attachments, volumes = plan_module.read_server(clients,
                                                           server_id)
    # Another project's server: refused before its agent is looked for.
    plan_module.check_owner(server, clients.project_id)
    capturers = capture.locate(clients, context, agent_locator)
    plan = plan_module.build_plan(server, attachments, volumes,
                                  clients.project_id, selection=devices,
                                  cannot_capture=capturers.cannot_capture)
    context.set_name = name or default_set_name(plan)
    report(progress, events.PLAN, events.DONE,
            drives=tuple(d.name for d in plan.devices))

    report(progress, events.PREFLIGHT, events.STARTED)
    window = window_module.choose_window(
        consistency, plan, clients, clock=clock, agent=capturers.agent,
        budget_s=budget_s, agent_status=capturers.agent_status)
    short = [c for c in preflight.check_quotas(clients, plan) if not c.ok]
    if short:
        raise errors.QuotaExceeded(short)
    report(progress, events.PREFLIGHT, events.DONE,
            message=window.description)

    rollback = Rollback(on_add=lambda resource: report(
        progress, events.RESOURCE, events.DONE, resource=resource),
        clock=clock)
    try:
        captures, window_ms = _capture(plan, window, capturers, rollback,
                                       budget_s, context, progress)
        level = window_module.achieved(
            window, consistency, [c.reached_at for c in captures])
        _check_still_attached(clients, plan)
        snapshot_set = _snapshot_set(plan, captures, level, window_ms,
                                     context, consistency, window)
        snapshot_set.schedule_id = schedule_id
        snapshot_set.undo_of = undo_of
        report(progress, events.PACKAGE, events.STARTED)
        snapshot_set = _package(clients, plan, snapshot_set, captures,
                                capturers, rollback)
        report(progress, events.PACKAGE, events.DONE, set_id=snapshot_set.id)
        if wait:
            report(progress, events.UPLOAD, events.STARTED)
            snapshot_set = wait_until_usable(
                clients, snapshot_set, clock,
                upload_error=lambda: _upload_error(capturers))
            report(progress, events.UPLOAD, events.DONE)
        if snapshot_set.status == sets.AVAILABLE:
            # Usable: the set's, for good (a set still uploading when the
            # caller does not wait is protected while its image is usable).
            mark_packaged(clients, snapshot_set)
    except errors.Superseded:
        LOG.warning('Run %s of %s was taken over by another process; '
                    'leaving what it made to it', context.run_id, server_id)
        raise
    except BaseException as e:
        with excutils.save_and_reraise_exception():
            report(progress, events.ROLLBACK, events.STARTED, message=str(e))
            rollback.run()
            e.rollback_failures = rollback.failures
            report(progress, events.ROLLBACK,
                    events.FAILED if rollback.failures else events.DONE,
                    message='; '.join(rollback.failures) or None)
    return snapshot_set


def _upload_error(capturers):
    for capturer in capturers:
        check = getattr(capturer, 'upload_error', None)
        if check is not None and getattr(capturer, 'capture_id', None):
            error = check()
            if error:
                return error
    return None


def _begin_all(plan, by_device, rollback):
    """Initiate every capture in parallel: one call per drive, or one per
    capturer that takes its drives in one instant (``begin_all``)."""
    tasks, batches = [], {}
    for device in plan.devices:
        capturer = by_device[device.name]
        if hasattr(capturer, 'begin_all'):
            batches.setdefault(capturer, []).append(device)
        else:
            tasks.append((lambda c, d: [c.begin(d, rollback)],
                          capturer, device))
    tasks += [(lambda c, ds: c.begin_all(ds, rollback), capturer, devices)
              for capturer, devices in batches.items()]
    # One thread per call: every capture begins at once, so the window
    # does not grow with the number of drives.
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=len(tasks)) as pool:
        futures = [pool.submit(*task) for task in tasks]
        # Every begin finishes (and registers its undo) before a failure
        # of one is raised.
        concurrent.futures.wait(futures)
        captures = [c for f in futures for c in f.result()]
    order = [d.name for d in plan.devices]
    return sorted(captures, key=lambda c: order.index(c.device.name))


def _reached(pending, by_device):
    """The ``pending`` captures whose instant is reached: each capturer
    asked once for all of its own."""
    by_capturer = {}
    for c in pending:
        by_capturer.setdefault(by_device[c.device.name], []).append(c)
    return [c for capturer, captures in by_capturer.items()
            for c in capturer.reached_all(captures)]


def _capture(plan, window, capturers, rollback, budget_s, context,
             progress):
    """Open the window, initiate every capture in parallel, wait for every
    instant, close the window. Returns the captures and the window in ms."""
    clock = context.clock
    # The intent, recorded before anything is held: a process that finds
    # the run abandoned here releases what this one may have begun.
    report(progress, events.OPEN_WINDOW, events.STARTED,
            message=window.description, window=window.record(),
            required=True)
    opening = clock.now()
    try:
        window.open()
        opened = clock.now()
        # The lease counts from before the hold; the drives from after it.
        window.open_ms = int((opened - opening) * 1000)
        context.lease_id = (getattr(window, 'lease', None) or {}).get('id')
        report(progress, events.OPEN_WINDOW, events.DONE,
                window=window.record())
        by_device = {d.name: capturers.for_device(d)[0]
                     for d in plan.devices}
        captures = _begin_all(plan, by_device, rollback)
        for c in captures:
            report(progress, events.CAPTURE, events.STARTED,
                    device=c.device.name)
        pending = list(captures)
        while pending:
            for c in _reached(pending, by_device):
                c.reached_at = clock.now()
                pending.remove(c)
                report(progress, events.CAPTURE, events.DONE,
                        device=c.device.name)
            if pending:
                if clock.now() - opened >= budget_s:
                    raise errors.WindowTimeout(
                        budget_s, [c.device.name for c in pending])
                clock.sleep(POLL_S)
    except BaseException as e:
        with excutils.save_and_reraise_exception():
            if isinstance(e, errors.Superseded) and not window.keyed:
                # The new owner's recovery undoes the hold, perhaps has
                # already; releasing it here could release the new owner's.
                return
            report(progress, events.CLOSE_WINDOW, events.STARTED)
            try:
                window.close()
            except Exception as e:
                LOG.exception('Closing the window after a failure failed')
                report(progress, events.CLOSE_WINDOW, events.FAILED,
                        message=str(e))
            else:
                report(progress, events.CLOSE_WINDOW, events.DONE)
    report(progress, events.CLOSE_WINDOW, events.STARTED)
    window.close()
    context.lease_id = None
    window_ms = int(round((clock.now() - opened) * 1000))
    report(progress, events.CLOSE_WINDOW, events.DONE, window_ms=window_ms)
    for c in captures:
        c.reached_at = int(round((c.reached_at - opened) * 1000))
    return captures, window_ms


def _check_still_attached(clients, plan):
    """A volume detached while the set was taken is not in the set."""
    attached = {(a['device'], a['volumeId']) for a in
                plan_module.read_attachments(clients, plan.server_id)}
    detached = [d.name for d in plan.volume_devices
                if (d.name, d.volume_id) not in attached]
    if detached:
        raise errors.DevicesChanged(detached)


def _snapshot_set(plan, captures, level, window_ms, context, requested,
                  window):
    # A drive shares the set's instant only if it was reached while the
    # guest was held; after a hold the watchdog ended early, the drives
    # reached after it were each taken at their own instant.
    within = [c for c in captures if window.level != window_module.NONE
              and window_module.held_through(window, c.reached_at)]
    shared = {id(c) for c in within} if len(within) > 1 else set()
    drives = [sets.Drive(name=c.device.name, kind=c.device.kind,
                         size_gb=c.device.size_gb,
                         volume_id=c.device.volume_id,
                         volume_name=c.device.volume_name,
                         snapshot_id=c.snapshot_id, image_id=c.image_id,
                         captured_ms=c.reached_at,
                         shared_instant=id(c) in shared,
                         captured_by=c.captured_by)
              for c in captures]
    root_image = next(
        (c.image_id for c in captures
         if c.image_id and c.device.kind == plan_module.ROOT_IMAGE), None)
    return sets.SnapshotSet(
        id=root_image or str(uuid.uuid4()), name=context.set_name,
        server_id=plan.server_id, run_id=context.run_id,
        consistency=level, requested_consistency=requested,
        window_ms=window_ms, drives=drives,
        excluded=[{'device': d.name, 'reason': why}
                  for d, why in plan.excluded],
        bootable=plan.bootable)


def _package(clients, plan, snapshot_set, captures, capturers, rollback):
    """Write the set's image: the capturer of the root writes it with the
    set's properties; without a root image, a new image without data
    carries them (as Nova does for a volume-backed server)."""
    set_properties = package.image_properties(snapshot_set, plan)
    wrote_set = False
    for capturer in capturers:
        mine = [c for c in captures if c.captured_by == capturer.name]
        if mine and capturer.package(mine, snapshot_set, plan,
                                     set_properties, rollback):
            wrote_set = True
    if wrote_set:
        return snapshot_set
    glance = clients.glance
    resource = events.Resource(events.IMAGE, snapshot_set.id)
    rollback.add(resource, capture.delete_image, glance, snapshot_set.id)
    glance.images.create(
        id=snapshot_set.id, name=snapshot_set.name, disk_format='raw',
        container_format='bare', visibility='private', **set_properties)
    rollback.created(resource)
    glance.images.upload(snapshot_set.id, io.BytesIO(b''), image_size=0)
    if any(d.image_id for d in snapshot_set.drives):
        return snapshot_set  # an ephemeral copy is still on its way
    return dataclasses.replace(snapshot_set, status=sets.AVAILABLE)


def mark_packaged(clients, snapshot_set):
    """Mark the set's snapshots and other images as a made set's: the
    reaper then leaves them alone for good, even if the set's image is
    deleted through Glance. A mark that fails leaves them protected only
    while the set's image names them."""
    def mark(drive):
        try:
            if drive.snapshot_id:
                clients.cinder.volume_snapshots.set_metadata(
                    drive.snapshot_id,
                    {properties.PACKAGED_IN: snapshot_set.id})
            if drive.image_id and drive.image_id != snapshot_set.id:
                clients.glance.images.update(
                    drive.image_id,
                    **{properties.PACKAGED_IN: snapshot_set.id})
        except Exception:
            LOG.exception('Could not mark %s of set %s as packaged',
                          drive.name, snapshot_set.id)
    clients_module.each(mark, snapshot_set.drives)


def wait_until_usable(clients, snapshot_set, clock,
                      timeout_s=UPLOAD_TIMEOUT_S, upload_error=None):
    """Wait until every image of the set is active; its snapshots already
    are.

    Nova uploads a root it captured; once Nova's task on the server has
    ended, an image still not active after ``STALLED_UPLOAD_S`` will not
    become so (seen here once: Glance kept a partial upload in ``saving``).
    The agent uploads the copies it took; ``upload_error()`` says when it
    gave up.
    """
    if snapshot_set.status == sets.AVAILABLE:
        return snapshot_set  # nothing uploads: its image has no data
    deadline = clock.now() + timeout_s
    poll_s, factor, most_s = UPLOAD_POLL_S
    nova_done_at = None
    by_nova = any(d.captured_by == 'nova' for d in snapshot_set.drives)
    pending = [snapshot_set.id] + [d.image_id for d in snapshot_set.drives
                                   if d.image_id and
                                   d.image_id != snapshot_set.id]
    while True:
        for image_id in list(pending):
            try:
                status = clients.glance.images.get(image_id)['status']
            except glance_exceptions.HTTPNotFound:
                status = 'deleted'
            if status == 'active':
                pending.remove(image_id)
            elif status not in ('queued', 'saving', 'uploading',
                                'importing'):
                raise errors.CaptureFailed(
                    'Image %s of snapshot set %s ended %s while uploading.'
                    % (image_id, snapshot_set.id, status))
        if not pending:
            return dataclasses.replace(snapshot_set, status=sets.AVAILABLE)
        error = upload_error() if upload_error else None
        if error:
            raise errors.CaptureFailed(
                'The compute-side agent could not upload snapshot set %s: '
                '%s' % (snapshot_set.id, error))
        if by_nova and nova_done_at is None and not clients.nova.servers.get(
                snapshot_set.server_id).to_dict().get(
                    'OS-EXT-STS:task_state'):
            nova_done_at = clock.now()
        if nova_done_at is not None and (
                clock.now() - nova_done_at >= STALLED_UPLOAD_S):
            raise errors.CaptureFailed(
                'Nova finished uploading the image of snapshot set %s, but '
                'Glance still shows it %s; nothing was kept.'
                % (snapshot_set.id, status))
        if clock.now() >= deadline:
            raise errors.CaptureFailed(
                'The image of snapshot set %s was not uploaded within %s s.'
                % (snapshot_set.id, timeout_s))
        clock.sleep(poll_s)
        poll_s = min(poll_s * factor, most_s)
