"""The agent's API: plain functions, one per route (placement's style).

Every handler gets the request and the Agent, and returns (status, body).
A handler acts on a guest only after ``authorize``: the token's project
must own the server (Nova's metadata), or the token must carry a
privileged role. A capture records that owner when it is made, so showing,
exporting or deleting it asks libvirt nothing (``_capture``).

libvirt that cannot be reached (libvirtd restarting for longer than
``[libvirt] connect_retry``) is a 503 that says so, never a bare 500.
"""

import functools
import logging
import re

import libvirt

from snapshot_dashboard import web
from snapshot_dashboard.agent import captures as captures_module
from snapshot_dashboard.agent import guests as guests_module
from snapshot_dashboard.agent import leases as leases_module
from snapshot_dashboard.agent import writes as writes_module

LOG = logging.getLogger(__name__)

RUN_ID = re.compile(r'[A-Za-z0-9-]{1,64}')
# Keystone's default roles that change a project's resources (a reader's
# token only reads).
WRITER_ROLES = frozenset({'member', 'admin'})
UUID = re.compile(r'[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}')
# The Guest method that ends each kind of lease.
RELEASES = {leases_module.FREEZE: 'thaw', leases_module.PAUSE: 'resume'}


class Agent:
    """What the handlers share: the hypervisor, the leases, the captures,
    the options. ``uploader(token_auth)`` returns ``upload(image_id, file)``
    acting with the caller's token, ``uploader.downloader(token_auth)``
    ``download(image_id, file)``; ``writes`` writes images into drives."""

    def __init__(self, hypervisor, leases, max_budget_s, privileged_roles,
                 captures=None, uploader=None, writes=None):
        self.hypervisor = hypervisor
        self.leases = leases
        self.max_budget_s = max_budget_s
        self.privileged_roles = set(privileged_roles)
        self.captures = captures
        self.uploader = uploader
        self.writes = writes

    def release_inherited_leases(self):
        """At start: release what an agent that died held (its lease
        file)."""
        return self.leases.release_inherited(
            lambda kind, uuid: release_of(self, kind, uuid))

    def thaw_frozen_guests(self):
        """At start: a guest left frozen by an agent that died is thawed."""
        thawed = []
        for guest in self.hypervisor.guests():
            if (guest.power_state() == 'running'
                    and guest.freeze_status() == 'frozen'):
                LOG.warning('Server %s was left frozen; thawing it',
                            guest.uuid)
                guest.ensure_thawed()
                thawed.append(guest.uuid)
        return thawed


def authorize(request, guest, agent):
    _authorize_owner(request, agent, guest.uuid, guest.owner_project())


def _roles(request):
    return {r.strip() for r in request.environ.get(
        'HTTP_X_ROLES', '').split(',')}


def _privileged(request, agent):
    return bool(_roles(request) & agent.privileged_roles)


def _authorize_owner(request, agent, server, owner):
    """The caller's project must be ``owner`` (the server's project in
    Nova's metadata; None: not a Nova guest), or it has a privileged
    role."""
    if _privileged(request, agent):
        return
    project = request.environ.get('HTTP_X_PROJECT_ID')
    if not project or owner != project:
        LOG.warning('Project %s refused on server %s (owned by %s)',
                    project, server, owner)
        raise web.HTTPError(403, 'Server %s is not in your project.'
                        % server)


def _guest(request, agent, uuid):
    try:
        guest = agent.hypervisor.guest(uuid)
    except guests_module.GuestError as e:
        raise web.HTTPError(e.status, str(e)) from e
    authorize(request, guest, agent)
    return guest


def _libvirt_errors(handler):
    """A libvirt error that escapes a handler is answered with what it is:
    503 when libvirtd cannot be reached, else 500 with libvirt's words."""

    @functools.wraps(handler)
    def wrapper(request, agent, **parts):
        try:
            return handler(request, agent, **parts)
        except guests_module.GuestError as e:
            LOG.warning('%s %s: %s', request.method, request.path_info, e)
            raise web.HTTPError(e.status, str(e)) from e
        except libvirt.libvirtError as e:
            LOG.exception('%s %s: libvirt failed', request.method,
                          request.path_info)
            if guests_module.unreachable(e):
                raise web.HTTPError(503, 'libvirt is unreachable on this '
                                    'host; try again: %s' % e) from e
            raise web.HTTPError(500, 'libvirt failed: %s' % e) from e
    return wrapper


def _body(request):
    return web.json_body(request)


def _budget(request, agent):
    body = _body(request)
    try:
        budget = float(body.get('budget_s'))
    except (TypeError, ValueError):
        raise web.HTTPError(400, 'budget_s (seconds) is required.') from None
    if not 0 < budget <= agent.max_budget_s:
        raise web.HTTPError(400, 'budget_s must be above 0 and at most %s.'
                        % agent.max_budget_s)
    return budget


def _lease_id(request):
    body = _body(request)
    if not body.get('lease'):
        raise web.HTTPError(400, 'lease is required.')
    return body['lease']


def show_server(request, agent, uuid):
    guest = _guest(request, agent, uuid)
    lease = agent.leases.holding(uuid)
    return 200, {'server': {
        'id': uuid,
        'power_state': guest.power_state(),
        'guest_agent': guest.agent_answers(),
        'freeze_status': guest.freeze_status(),
        'lease': lease.to_dict(agent.leases.clock()) if lease else None,
        'local_drives': guest.local_drives(),
    }}


def release_of(agent, kind, uuid):
    """What ends a ``kind`` lease of server ``uuid``: it looks the guest up
    each time it runs, so that it outlives the libvirt connection of the
    hold (libvirtd may restart in between)."""
    action = RELEASES[kind]

    def release():
        try:
            guest = agent.hypervisor.guest(uuid)
        except guests_module.GuestNotFound:
            LOG.warning('Server %s is gone from this host: nothing to %s',
                        uuid, action)
            return
        getattr(guest, action)()
    return release


def _take(request, agent, uuid, kind, hold):
    guest = _guest(request, agent, uuid)
    budget = _budget(request, agent)
    try:
        lease = agent.leases.take(uuid, kind, budget, lambda: hold(guest),
                                  release_of(agent, kind, uuid))
    except (leases_module.LeaseConflict, leases_module.LeaseNotRecorded,
            guests_module.GuestError) as e:
        raise web.HTTPError(e.status, str(e)) from e
    return 201, {'lease': lease.to_dict(agent.leases.clock())}


def freeze(request, agent, uuid):
    return _take(request, agent, uuid, leases_module.FREEZE,
                 lambda guest: guest.freeze())


def pause(request, agent, uuid):
    return _take(request, agent, uuid, leases_module.PAUSE,
                 lambda guest: guest.pause())


def _release(request, agent, uuid, kind):
    _guest(request, agent, uuid)
    try:
        lease = agent.leases.find(_lease_id(request))
    except leases_module.LeaseNotFound as e:
        raise web.HTTPError(404, str(e)) from e
    if lease.server != uuid or lease.kind != kind:
        raise web.HTTPError(409, 'Lease %s is not a %s of server %s.'
                        % (lease.id, kind, uuid))
    lease = agent.leases.release(lease.id)
    body = {'lease': lease.to_dict(agent.leases.clock())}
    if lease.released_by != leases_module.CALLER:
        # Released before the caller asked: the hold did not last.
        return 409, dict(body, message='The %s of server %s ended before '
                         'this call (%s).' % (kind, uuid, lease.released_by))
    if lease.release_error:
        return 500, dict(body, message=lease.release_error)
    return 200, body


def thaw(request, agent, uuid):
    return _release(request, agent, uuid, leases_module.FREEZE)


def resume(request, agent, uuid):
    return _release(request, agent, uuid, leases_module.PAUSE)


def _capture_call(function, *args):
    try:
        return function(*args)
    except captures_module.CaptureError as e:
        raise web.HTTPError(e.status, str(e)) from e


def create_capture(request, agent, uuid):
    """Copy the named local drives as they are now, in one instant; with a
    ``lease``, only while that lease holds the server."""
    guest = _guest(request, agent, uuid)
    body = _body(request)
    devices = body.get('devices')
    if (not isinstance(devices, list) or not devices
            or not all(isinstance(d, str) for d in devices)):
        raise web.HTTPError(400, 'devices must be a list of drive names, such '
                        'as ["vda", "vdb"].')
    lease_id = body.get('lease')
    if lease_id is not None:
        lease = agent.leases.active(uuid)
        if lease is None or lease.id != lease_id:
            raise web.HTTPError(409, 'Lease %s does not hold server %s now.'
                            % (lease_id, uuid))
    run = body.get('run')
    if run is not None and not (isinstance(run, str)
                                and RUN_ID.fullmatch(run)):
        raise web.HTTPError(400, 'run must be the id of the run that asks '
                        '(letters, digits, "-", at most 64).')
    capture = _capture_call(agent.captures.begin, guest, devices, run)
    capture.lease = lease_id
    return 201, {'capture': capture.to_dict()}


def list_captures(request, agent):
    """The copies held for nobody yet (copying, or copied and not asked
    to be exported), on every server: for the worker's reaper, so only a
    privileged role may list them."""
    if not _privileged(request, agent):
        raise web.HTTPError(403, 'Listing the captures of every server '
                        'needs a privileged role.')
    return 200, {'captures': [
        dict(capture.to_dict(), project=capture.project,
             age_s=round(age, 1))
        for capture, age in agent.captures.held()]}


def _capture(request, agent, uuid, capture_id):
    """The capture, once the caller may act on it: its project owned the
    server when the capture was made (or a privileged role). No libvirt
    call: the copies are the agent's own files, and libvirtd may be
    restarting."""
    capture = _capture_call(agent.captures.get, uuid, capture_id)
    _authorize_owner(request, agent, uuid, capture.project)
    return capture


def show_capture(request, agent, uuid, capture_id):
    capture = _capture(request, agent, uuid, capture_id)
    return 200, {'capture': capture.to_dict()}


def export_capture(request, agent, uuid, capture_id):
    """Upload the copies to Glance images the caller made, in the order
    given (``images``: a list of ``{"device", "image"}``), with the caller's
    own token; the copies are then removed, and so are the ones not named.
    """
    capture = _capture(request, agent, uuid, capture_id)
    listed = _body(request).get('images')
    if (not isinstance(listed, list) or not listed or not all(
            isinstance(i, dict) and isinstance(i.get('device'), str)
            and isinstance(i.get('image'), str) for i in listed)):
        raise web.HTTPError(400, 'images must be a list of {"device": …, '
                        '"image": <Glance image id>}.')
    images = {i['device']: i['image'] for i in listed}
    upload = agent.uploader(request.environ.get('keystone.token_auth'))
    _capture_call(agent.captures.export, capture, images, upload)
    return 202, {'capture': capture.to_dict()}


def delete_capture(request, agent, uuid, capture_id):
    capture = _capture(request, agent, uuid, capture_id)
    agent.captures.delete(capture, agent.hypervisor)
    return 200, {'capture': capture.to_dict()}


def write_drive(request, agent, uuid, device):
    """Write a Glance image (``image``, fetched with the caller's own
    token) into the local drive ``device`` of the shut-off server: an
    ephemeral disk restored in place. Answers when the drive is written."""
    guest = _guest(request, agent, uuid)
    if not (_privileged(request, agent) or WRITER_ROLES & _roles(request)):
        raise web.HTTPError(403, 'Writing a drive needs the member role.')
    image = _body(request).get('image')
    if not isinstance(image, str) or not UUID.fullmatch(image):
        raise web.HTTPError(400, 'image must be a Glance image id.')
    download = agent.uploader.downloader(
        request.environ.get('keystone.token_auth'))
    try:
        written = agent.writes.write(guest, device, image, download)
    except writes_module.WriteError as e:
        raise web.HTTPError(e.status, str(e)) from e
    return 200, {'write': written}


ROUTES = {path: {method: _libvirt_errors(handler)
                 for method, handler in methods.items()}
          for path, methods in {
    '/v1/captures': {'GET': list_captures},
    '/v1/servers/{uuid}': {'GET': show_server},
    '/v1/servers/{uuid}/freeze': {'POST': freeze},
    '/v1/servers/{uuid}/thaw': {'POST': thaw},
    '/v1/servers/{uuid}/pause': {'POST': pause},
    '/v1/servers/{uuid}/resume': {'POST': resume},
    '/v1/servers/{uuid}/captures': {'POST': create_capture},
    '/v1/servers/{uuid}/captures/{capture_id}': {'GET': show_capture,
                                                 'DELETE': delete_capture},
    '/v1/servers/{uuid}/captures/{capture_id}/export': {
        'POST': export_capture},
    '/v1/servers/{uuid}/drives/{device}/write': {'POST': write_drive},
}.items()}
