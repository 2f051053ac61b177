"""Who acts, with which credentials: the one home for them on the Django
side, used by the Horizon wrappers (``api``) and the worker alike.

- The user, with the token of the request (what the user sees and asks).
- The service user (``SNAPSHOT_DASHBOARD_SERVICE_AUTH``, read from the
  settings, never stored): it finds a server's compute host, which Nova
  shows only to admins, and it is the trustee of the users' trusts.
- The user again, through a Keystone trust to the service user: the worker
  acts so for runs and schedules. Only the trust's id is stored.
"""

import dataclasses
import functools
import logging

from django.conf import settings
from django.utils import timezone
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as keystone_client

from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import clients as clients_module

LOG = logging.getLogger(__name__)


def verify():
    """Horizon's TLS settings, for every session made here."""
    if getattr(settings, 'OPENSTACK_SSL_NO_VERIFY', False):
        return False
    return getattr(settings, 'OPENSTACK_SSL_CACERT', None) or True


def request_session(request):
    """A session acting with the token of the request's user."""
    auth = v3.Token(auth_url=request.user.endpoint,
                    token=request.user.token.id,
                    project_id=request.user.project_id)
    return ks_session.Session(auth=auth, verify=verify())


@functools.lru_cache(maxsize=1)
def service_session():
    return ks_session.Session(
        auth=v3.Password(**settings.SNAPSHOT_DASHBOARD_SERVICE_AUTH),
        verify=verify())


def trust_session(trust_id):
    """A session of the service user acting as the trustor, through the
    trust."""
    options = {k: v for k, v in
               settings.SNAPSHOT_DASHBOARD_SERVICE_AUTH.items()
               if not k.startswith('project_')}
    return ks_session.Session(auth=v3.Password(trust_id=trust_id, **options),
                              verify=verify())


def agent_locator():
    """Finds a server's compute-side agent (``SNAPSHOT_DASHBOARD_AGENT_URL``,
    ``{host}`` read with the service user); None where no agent runs."""
    template = getattr(settings, 'SNAPSHOT_DASHBOARD_AGENT_URL', None)
    if not template:
        return None
    return agent_module.AgentLocator(
        template, service_clients=clients_module.Clients(service_session()))


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: a user with a project-scoped token, as Horizon's request
    or the API's keystonemiddleware shows them. ``session`` acts with the
    token."""

    user_id: str
    user_name: str
    project_id: str
    role_names: tuple
    session: ks_session.Session
    region_name: str | None = None

    @classmethod
    def of_request(cls, request):
        user = request.user
        return cls(user_id=user.id, user_name=user.username,
                   project_id=user.project_id,
                   role_names=tuple(role['name'] for role in user.roles),
                   session=request_session(request),
                   region_name=user.services_region)


def create_trust(caller, lifetime=None):
    """A trust from the caller to the service user on the caller's
    project, with the caller's roles; impersonating, so every action shows
    the caller. ``lifetime`` (a timedelta) None: it lasts until deleted."""
    trustee = service_session().get_user_id()
    expires = timezone.now() + lifetime if lifetime else None
    keystone = keystone_client.Client(session=caller.session,
                                      region_name=caller.region_name)
    return keystone.trusts.create(
        trustee_user=trustee, trustor_user=caller.user_id,
        project=caller.project_id, role_names=list(caller.role_names),
        impersonation=True, expires_at=expires)


def delete_trust(trust_id, session=None):
    """Delete a trust as the service user (Keystone lets the trustor or an
    admin; the trustor may be gone, or not the one asking); True if it is
    gone. A failure is logged and returned, not raised."""
    if not trust_id:
        return True
    session = session or service_session()
    try:
        keystone_client.Client(session=session).trusts.delete(trust_id)
    except ks_exceptions.NotFound:
        return True  # revoked, expired, or its trustor gone
    except Exception as e:
        LOG.warning('Could not delete trust %s: %s', trust_id, e)
        return False
    return True
