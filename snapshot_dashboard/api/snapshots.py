"""Horizon-style wrappers: ``verb_noun(request, ...)`` on the orchestration.

The user's own token acts for everything the user sees; the service
credential (``SNAPSHOT_DASHBOARD_SERVICE_AUTH``, read from the settings,
never stored) only finds a server's compute host and is the trustee of the
trusts the worker acts through.
"""

import datetime
import functools
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from openstack_dashboard.api import keystone

from snapshot_dashboard import models
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import plan as planning
from snapshot_dashboard.orchestration import preflight as preflight_module
from snapshot_dashboard.orchestration import retention
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import timing
from snapshot_dashboard.orchestration import window as windows
from snapshot_dashboard.worker import schedules

LOG = logging.getLogger(__name__)

RUN_TRUST_HOURS = 24
KIND_LABELS = {planning.ROOT_IMAGE: 'root image',
               planning.ROOT_VOLUME: 'root volume',
               planning.EPHEMERAL: 'ephemeral', planning.VOLUME: 'volume'}


def clients(request):
    """The orchestration's clients acting with the user's token."""
    cached = getattr(request, '_snapshot_dashboard_clients', None)
    if cached is None:
        auth = v3.Token(auth_url=request.user.endpoint,
                        token=request.user.token.id,
                        project_id=request.user.project_id)
        cached = clients_module.Clients(
            ks_session.Session(auth=auth,
                               verify=not settings.OPENSTACK_SSL_NO_VERIFY),
            region_name=request.user.services_region)
        request._snapshot_dashboard_clients = cached
    return cached


@functools.lru_cache(maxsize=1)
def service_session():
    return ks_session.Session(
        auth=v3.Password(**settings.SNAPSHOT_DASHBOARD_SERVICE_AUTH))


def trust_session(trust_id):
    """A session of the service user acting as the trustor, through the
    trust."""
    options = {k: v for k, v in
               settings.SNAPSHOT_DASHBOARD_SERVICE_AUTH.items()
               if not k.startswith('project_')}
    return ks_session.Session(auth=v3.Password(trust_id=trust_id, **options))


def agent_locator():
    template = getattr(settings, 'SNAPSHOT_DASHBOARD_AGENT_URL', None)
    if not template:
        return None
    return agent_module.AgentLocator(
        template, service_clients=clients_module.Clients(service_session()))


def list_sets(request, all_projects=False, server_id=None):
    return sets.list_sets(clients(request), server_id=server_id,
                          all_projects=all_projects)


def get_set(request, set_id):
    return sets.get_set(clients(request), set_id)


def delete_set(request, set_id, any_project=False):
    sets.delete_set(clients(request), set_id, any_project=any_project)


def server_names(request, all_projects=False):
    search = {'all_tenants': True} if all_projects else {}
    return {s.id: s.name for s in
            clients(request).nova.servers.list(search_opts=search)}


def server_name(request, server_id):
    """The server's name, or its id if it is gone."""
    try:
        return clients(request).nova.servers.get(server_id).name
    except Exception:
        return server_id


def preflight(request, server_id):
    """What the workflow shows before submit: every drive, the agent, the
    consistency each level gives, and the quotas for every drive."""
    user_clients = clients(request)
    locator = agent_locator()
    agent = None
    if locator is not None:
        try:
            agent = locator.for_server(user_clients, server_id)
        except Exception:
            LOG.exception('Could not locate the agent of %s', server_id)
    status = agent_module.probe(agent, server_id)
    plan = run.plan_snapshot_set(
        user_clients, server_id,
        available=_capturers(user_clients, server_id, agent, status))
    expected, refused = {}, {}
    for level in windows.LEVELS:
        try:
            window = windows.choose_window(level, plan, user_clients,
                                           agent=agent, agent_status=status)
            expected[level] = window.level
        except errors.SnapshotSetError as e:
            refused[level] = str(e)
    return {
        'server_name': plan.server_name,
        'drives': [_drive(d) for d in plan.devices]
        + [_drive(d, reason) for d, reason in plan.excluded],
        'agent': status is not None,
        'guest_agent': bool(status and status.get('guest_agent')),
        'expected': expected,  # level asked -> level the user will get
        'refused': refused,  # level asked -> why it cannot be had
        'quotas': preflight_module.check_quotas(user_clients, plan),
    }


def _capturers(user_clients, server_id, agent, status):
    return capture.capturers(user_clients, run.RunContext('', server_id),
                             agent, status)


def _drive(device, reason=None):
    return {'name': device.name, 'kind': device.kind,
            'kind_label': KIND_LABELS[device.kind],
            'volume_name': device.volume_name, 'size_gb': device.size_gb,
            'reason': reason}


def check_selection(request, server_id, devices):
    """The quota checks of exactly these drives; raises a SnapshotSetError
    (unknown drives, another project's server) before anything changes."""
    user_clients = clients(request)
    plan = planning.load_plan(user_clients, server_id, selection=devices)
    return preflight_module.check_quotas(user_clients, plan)


def create_run(request, server_id, server_name, devices, name, description,
               consistency):
    """Enqueue a run for the worker, with a trust from the user to the
    service user that ends with the run."""
    trust = create_trust(request, datetime.timedelta(hours=RUN_TRUST_HOURS))
    try:
        return models.SnapshotRun.objects.create(
            project_id=request.user.project_id, user_id=request.user.id,
            user_name=request.user.username, server_id=server_id,
            server_name=server_name or '', devices=devices, name=name or '',
            description=description or '', consistency=consistency,
            trust_id=trust.id,
            drives=dict.fromkeys(devices or [], models.QUEUED))
    except Exception:
        # No run to act for: the permission goes too.
        keystone.keystoneclient(request).trusts.delete(trust.id)
        raise


def create_trust(request, lifetime=None):
    """A trust from the user to the service user on the user's project,
    with the user's roles; impersonating, so every action shows the user."""
    trustee = service_session().get_user_id()
    expires = timezone.now() + lifetime if lifetime else None
    return keystone.keystoneclient(request).trusts.create(
        trustee_user=trustee, trustor_user=request.user.id,
        project=request.user.project_id,
        role_names=[role['name'] for role in request.user.roles],
        impersonation=True, expires_at=expires)


def list_runs(request, include_ended_since=None):
    """The project's runs still in progress, and the failed ones since."""
    since = include_ended_since or (timezone.now()
                                    - datetime.timedelta(days=1))
    return list(models.SnapshotRun.objects.filter(
        project_id=request.user.project_id).filter(
            Q(state__in=(models.QUEUED, models.RUNNING))
            | Q(state=models.FAILED, created_at__gte=since)))


def get_run(request, run_id):
    return models.SnapshotRun.objects.get(id=run_id,
                                          project_id=request.user.project_id)


def launch_from_set(request, set_id, name, flavor_id, network_id=None):
    """Boot a server from the set: Nova recreates every volume from its
    snapshot (the set's block_device_mapping)."""
    nics = [{'net-id': network_id}] if network_id else 'none'
    return clients(request).nova.servers.create(name, set_id, flavor_id,
                                                nics=nics)


# -- backup schedules ---------------------------------------------------------

def list_schedules(request):
    return list(models.Schedule.objects.filter(
        project_id=request.user.project_id))


def get_schedule(request, schedule_id):
    return models.Schedule.objects.get(id=schedule_id,
                                       project_id=request.user.project_id)


def create_schedule(request, **fields):
    """A schedule with a trust from the user to the service user that lasts
    as long as the schedule (no expiry)."""
    trust = create_trust(request)
    try:
        schedule = models.Schedule(
            project_id=request.user.project_id, user_id=request.user.id,
            user_name=request.user.username, trust_id=trust.id, **fields)
        schedule.next_run_at = timing.next_fire(
            schedule.cron, schedule.timezone, timezone.now())
        schedule.save()
    except Exception:
        keystone.keystoneclient(request).trusts.delete(trust.id)
        raise
    return schedule


def update_schedule(request, schedule_id, **fields):
    schedule = get_schedule(request, schedule_id)
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.next_run_at = (timing.next_fire(
        schedule.cron, schedule.timezone, timezone.now())
        if schedule.enabled and not schedule.broken_reason else None)
    schedule.save()
    return schedule


def set_schedule_enabled(request, schedule_id, enabled):
    return update_schedule(request, schedule_id, enabled=enabled)


def delete_schedule(request, schedule_id):
    """Delete the schedule and its trust; its sets stay."""
    schedule = get_schedule(request, schedule_id)
    if schedule.trust_id:
        try:
            keystone.keystoneclient(request).trusts.delete(schedule.trust_id)
        except Exception as e:
            # Already gone (revoked, expired user): nothing to keep.
            LOG.info('Trust of schedule %s not deleted: %s', schedule_id, e)
    schedule.delete()


def run_schedule_now(request, schedule_id):
    return schedules.queue_run(get_schedule(request, schedule_id))


def retention_preview(request, schedule):
    """The schedule's sets, and those its rules would delete after its next
    run (a new set counted as the newest)."""
    mine = [s for s in list_sets(request, server_id=schedule.server_id)
            if s.schedule_id == str(schedule.id)]
    upcoming = sets.SnapshotSet(
        id='next', name='', server_id=schedule.server_id, run_id='',
        consistency='', requested_consistency='', window_ms=0, drives=[],
        created_at=timezone.now().isoformat(),
        schedule_id=str(schedule.id))
    doomed = retention.schedule_sets_to_delete(
        mine + [upcoming], str(schedule.id), schedule.rules(),
        schedule.timezone)
    return mine, [s for s in doomed if s.id != 'next']

