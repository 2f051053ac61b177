"""What every handler of the REST API shares: who calls, what policy lets
them, the clients acting with their token, and the checks of a body.

Handlers are plain functions ``handler(request, service, **parts)``
returning ``(status, body)`` or a response; ``web.HTTPError`` says why a
request is refused, and nothing is changed before every check passed.
"""

import logging
import uuid

from django.core import exceptions as django_exceptions
from keystoneauth1 import session as ks_session
from oslo_context import context as oslo_context
from oslo_policy import policy

from snapshot_dashboard import credentials
from snapshot_dashboard import web
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import preflight as preflight_module

LOG = logging.getLogger(__name__)

MAX_NAME = 255
MAX_ID = 64
MAX_DEVICES = 64


class Service:
    """What the handlers share: the options, the policy enforcer, and how
    to find a server's agent; ``clients(caller)`` acts with the caller's
    token."""

    def __init__(self, conf, enforcer, agent_locator=None):
        self.conf = conf
        self.enforcer = enforcer
        self.agent_locator = agent_locator

    def clients(self, caller):
        return clients_module.Clients(caller.session,
                                      region_name=self.conf.api.region_name,
                                      interface=self.conf.api.interface)

    def caller(self, request):
        """The caller keystonemiddleware confirmed, with a session acting
        with the caller's token."""
        environ = request.environ
        token_auth = environ.get('keystone.token_auth')
        if environ.get('HTTP_X_IDENTITY_STATUS') != 'Confirmed' or (
                token_auth is None):
            raise web.HTTPError(401, 'Authentication is required.')
        project_id = environ.get('HTTP_X_PROJECT_ID')
        if not project_id:
            raise web.HTTPError(403, 'A token scoped to a project is '
                                     'required.')
        roles = tuple(r.strip() for r in
                      environ.get('HTTP_X_ROLES', '').split(',') if r.strip())
        return credentials.Caller(
            user_id=environ.get('HTTP_X_USER_ID', ''),
            user_name=environ.get('HTTP_X_USER_NAME', ''),
            project_id=project_id, role_names=roles,
            session=ks_session.Session(auth=token_auth,
                                       verify=credentials.verify()),
            region_name=self.conf.api.region_name)

    def authorize(self, request, rule, project_id):
        """403 unless policy lets the caller apply ``rule`` to an object
        of ``project_id``."""
        values = oslo_context.RequestContext.from_environ(
            request.environ).to_policy_values()
        try:
            self.enforcer.authorize(rule, {'project_id': project_id}, values,
                                    do_raise=True)
        except policy.PolicyNotAuthorized:
            LOG.info('Policy refused %s to user %s of project %s', rule,
                     values.get('user_id'), values.get('project_id'))
            raise web.HTTPError(403, 'Policy does not allow %s.'
                                % rule) from None

    def preflight(self, clients, server_id):
        """The pre-flight of the server: 404 for a server the caller's
        project does not have, 409 for one that cannot be snapshotted."""
        try:
            return preflight_module.check(clients, server_id,
                                          self.agent_locator)
        except errors.ServerNotFound as e:
            raise web.HTTPError(404, str(e)) from e
        except errors.ServerNotSnapshottable as e:
            raise web.HTTPError(409, str(e)) from e
        except errors.SnapshotSetError as e:
            raise web.HTTPError(400, str(e)) from e

    def body(self, request, key, allowed):
        """The object under ``key`` of the request's JSON body; 400 for any
        field not in ``allowed``."""
        body = web.json_body(request, self.conf.api.max_body_bytes)
        fields = body.get(key)
        if set(body) != {key} or not isinstance(fields, dict):
            raise web.HTTPError(400, 'The body must be {"%s": {...}}.' % key)
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise web.HTTPError(400, 'Unknown field(s): %s. Known: %s.' % (
                ', '.join(unknown), ', '.join(sorted(allowed))))
        return fields


def check_selection(preflight, devices, consistency):
    """400 for drives or a level the server cannot have, 403 for quota."""
    try:
        checks = preflight.check_selection(devices)
    except errors.SnapshotSetError as e:
        raise web.HTTPError(400, str(e)) from e
    if consistency in preflight.refused:
        raise web.HTTPError(400, preflight.refused[consistency])
    short = [c for c in checks if not c.ok]
    if short:
        raise web.HTTPError(403, str(errors.QuotaExceeded(short)))


def text(fields, name, required=False, max_length=MAX_NAME, default=''):
    value = fields.get(name)
    if value is None:
        if required:
            raise web.HTTPError(400, '%s is required.' % name)
        return default
    if not isinstance(value, str) or (required and not value.strip()):
        raise web.HTTPError(400, '%s must be a non-empty string.' % name
                            if required else '%s must be a string.' % name)
    if len(value) > max_length:
        raise web.HTTPError(400, '%s is longer than %d characters.'
                            % (name, max_length))
    return value


def server_id(fields, name='server_id', required=True):
    """A server's UUID (Nova's ids are), else 400: nothing else reaches a
    URL. None when not ``required`` and not given."""
    value = text(fields, name, required=required, max_length=MAX_ID)
    if not value and not required:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise web.HTTPError(400, '%s must be a server\'s UUID.' % name) \
            from None


def choice(fields, name, choices, default):
    value = fields.get(name, default)
    if value not in choices:
        raise web.HTTPError(400, '%s must be one of %s.'
                            % (name, ', '.join(choices)))
    return value


def whole_number(fields, name, default=0):
    value = fields.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise web.HTTPError(400, '%s must be a whole number.' % name)
    return value


def devices(fields):
    """None (every drive) or a non-empty list of drive names, as Nova names
    them (``vdb`` is ``/dev/vdb``)."""
    value = fields.get('devices')
    if value is None:
        return None
    if (not isinstance(value, list) or not value
            or len(value) > MAX_DEVICES
            or not all(isinstance(d, str) and 0 < len(d) <= MAX_ID
                       for d in value)):
        raise web.HTTPError(400, 'devices must be null (every drive) or a '
                                 'list of drive names, such as ["vda", '
                                 '"vdb"].')
    return [plan_module.normalize_device_name(d) for d in value]


def limit(request, default, maximum):
    """``?limit=`` of a listing: from 1 to ``maximum``, else 400."""
    try:
        value = int(request.GET.get('limit', default))
    except ValueError:
        value = 0
    if not 0 < value <= maximum:
        raise web.HTTPError(400, 'limit must be from 1 to %d.' % maximum)
    return value


def get_or_404(queryset, what, object_id, **filters):
    try:
        return queryset.get(pk=object_id, **filters)
    except (queryset.model.DoesNotExist, django_exceptions.ValidationError,
            ValueError):
        raise web.HTTPError(404, 'No %s %s in your project.'
                            % (what, object_id)) from None


def iso(when):
    return when.isoformat() if when else None


def queue_planned(plan, queue):
    """``queue(plan())``, a plan that cannot be made said as an HTTP
    error (nothing queued)."""
    try:
        planned = plan()
    except (errors.SetNotFound, errors.ServerNotFound) as e:
        raise web.HTTPError(404, str(e)) from e
    except (errors.SetNotUsable, errors.ServerNotAttachable,
            errors.ServerNotRestorable) as e:
        raise web.HTTPError(409, str(e)) from e
    except errors.QuotaExceeded as e:
        raise web.HTTPError(403, str(e)) from e
    except errors.SnapshotSetError as e:
        raise web.HTTPError(400, str(e)) from e
    return queue(planned)
