"""Horizon-style wrappers: ``verb_noun(request, ...)`` on the orchestration
and the run and schedule models, acting with the user's own token.

Each is thin: the logic is in ``orchestration`` (sets, pre-flight), in
``lifecycle`` (runs, schedules and their trusts, shared with the REST
API), in ``models`` and in ``credentials`` (sessions and trusts).
"""

import datetime

from django.db.models import Q
from django.utils import timezone
from horizon.utils import functions as horizon_functions

from snapshot_dashboard import credentials
from snapshot_dashboard import lifecycle
from snapshot_dashboard import models
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import preflight as preflight_module
from snapshot_dashboard.orchestration import sets


def clients(request):
    """The orchestration's clients acting with the user's token, one set
    per request."""
    cached = getattr(request, '_snapshot_dashboard_clients', None)
    if cached is None:
        cached = clients_module.Clients(
            credentials.request_session(request),
            region_name=request.user.services_region)
        request._snapshot_dashboard_clients = cached
    return cached


def list_sets(request, all_projects=False, server_id=None):
    return sets.list_sets(clients(request), server_id=server_id,
                          all_projects=all_projects)


def page_sets(request, marker=None, all_projects=False):
    """A page of the sets (the user's page size) after ``marker``, and the
    marker of the next page, None on the last."""
    return sets.page_sets(clients(request),
                          horizon_functions.get_page_size(request),
                          marker=marker, all_projects=all_projects)


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
    """The ``preflight.Preflight`` of a set of the server: every drive, the
    agent, what each consistency level gives, the quotas. Read once per
    request: the submit's checks use the same reading."""
    cache = request.__dict__.setdefault('_snapshot_dashboard_preflights', {})
    if server_id not in cache:
        cache[server_id] = preflight_module.check(clients(request), server_id,
                                                  credentials.agent_locator())
    return cache[server_id]


def check_selection(request, server_id, devices):
    """The quota checks of exactly these drives (None: every drive); raises
    a SnapshotSetError (unknown drives, drives that cannot be captured,
    another project's server) before anything changes."""
    return preflight(request, server_id).check_selection(devices)


def create_run(request, server_id, server_name, devices, name, description,
               consistency):
    """Queue a run for the worker, with a trust from the user to the
    service user that ends with the run."""
    return lifecycle.queue_run(
        credentials.Caller.of_request(request), server_id, server_name,
        devices, name, description, consistency)


def list_runs(request, include_ended_since=None):
    """The project's runs taking a set still in progress, and the failed
    ones since (a restore's run makes volumes, not a set)."""
    since = include_ended_since or (timezone.now()
                                    - datetime.timedelta(days=1))
    return list(models.SnapshotRun.objects.filter(
        project_id=request.user.project_id, action=models.CREATE).filter(
            Q(state__in=(models.QUEUED, models.RUNNING))
            | Q(state=models.FAILED, created_at__gte=since)))


def get_run(request, run_id):
    return models.SnapshotRun.objects.get(id=run_id,
                                          project_id=request.user.project_id)


def restore_preview(request, set_id):
    """(plan, refused): what restoring every drive of the set in place
    would do, and the drives that cannot be, with why."""
    return inplace.preview(clients(request), set_id)


def check_restore_in_place(request, set_id, devices):
    """The plan of restoring ``devices`` of the set in place; raises a
    SnapshotSetError that says why it cannot be."""
    return inplace.plan_in_place(clients(request), set_id, devices)


def restore_in_place(request, set_id, devices):
    """Check the restore in place of ``devices`` of the set, then queue it
    for the worker with a trust that ends with the run."""
    plan = check_restore_in_place(request, set_id, devices)
    return lifecycle.queue_restore(credentials.Caller.of_request(request),
                                   plan.snapshot_set, devices, None,
                                   in_place=True)


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
    return lifecycle.create_schedule(credentials.Caller.of_request(request),
                                     **fields)


def update_schedule(request, schedule_id, **fields):
    return lifecycle.update_schedule(get_schedule(request, schedule_id),
                                     **fields)


def set_schedule_enabled(request, schedule_id, enabled):
    return update_schedule(request, schedule_id, enabled=enabled)


def delete_schedule(request, schedule_id):
    """Delete the schedule and its trust; its sets stay."""
    lifecycle.delete_schedule(get_schedule(request, schedule_id))


def run_schedule_now(request, schedule_id):
    return get_schedule(request, schedule_id).queue_run()


def retention_preview(request, schedule):
    """The schedule's sets its retention will delete after its next run."""
    return schedule.sets_to_delete(
        list_sets(request, server_id=schedule.server_id),
        upcoming_at=timezone.now())
