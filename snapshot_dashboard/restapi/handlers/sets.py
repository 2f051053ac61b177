"""``/v1/sets``: the project's snapshot sets, shown and deleted whole, and
their drives restored."""

import dataclasses

from snapshot_dashboard import lifecycle
from snapshot_dashboard import models
from snapshot_dashboard import web
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import restore
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.restapi import policies
from snapshot_dashboard.restapi.handlers import common
from snapshot_dashboard.restapi.handlers import runs

RESTORE_FIELDS = ('as', 'devices', 'attach_to', 'budget_s')
NEW_VOLUMES = 'new-volumes'
IN_PLACE = 'in-place'


def view(snapshot_set):
    return dataclasses.asdict(snapshot_set)


def list_sets(request, service):
    """``?server_id=`` for one server's."""
    caller = service.caller(request)
    service.authorize(request, policies.SET_LIST, caller.project_id)
    found = sets.list_sets(service.clients(caller),
                           server_id=request.GET.get('server_id') or None)
    return 200, {'sets': [view(s) for s in found]}


def _get(service, caller, set_id):
    try:
        return sets.get_set(service.clients(caller), set_id)
    except errors.SetNotFound as e:
        raise web.HTTPError(404, str(e)) from e


def show_set(request, service, set_id):
    caller = service.caller(request)
    snapshot_set = _get(service, caller, set_id)
    service.authorize(request, policies.SET_GET, snapshot_set.project_id)
    return 200, {'set': view(snapshot_set)}


def delete_set(request, service, set_id):
    """Its volume snapshots, then its image; 409 with what is left if a
    part could not be deleted (the delete can be retried)."""
    caller = service.caller(request)
    # delete_set reads the set itself, and only the caller's project's.
    service.authorize(request, policies.SET_DELETE, caller.project_id)
    try:
        sets.delete_set(service.clients(caller), set_id)
    except errors.SetNotFound as e:
        raise web.HTTPError(404, str(e)) from e
    except errors.SetDeleteFailed as e:
        raise web.HTTPError(409, str(e)) from e
    return 204, None


def restore_set(request, service, set_id):
    """Restore drives of the set (``devices``, null: every drive) as new
    volumes (``"as": "new-volumes"``), attached to ``attach_to`` (a server
    of the project) if given; or in place (``"as": "in-place"``) into the
    set's server, after a safety set (held still at most ``budget_s``).
    Checked now against the set, the server and the volume quota, then
    queued for the worker; 202 with the run."""
    caller = service.caller(request)
    service.authorize(request, policies.SET_RESTORE, caller.project_id)
    fields = service.body(request, 'restore', RESTORE_FIELDS)
    kind = common.choice(fields, 'as', (NEW_VOLUMES, IN_PLACE), None)
    devices = common.devices(fields)
    if kind == IN_PLACE:
        if fields.get('attach_to'):
            raise web.HTTPError(400, 'attach_to is for a restore as new '
                                'volumes: in place, the drives go back '
                                'into the set\'s own server.')
        try:
            budget_s = lifecycle.check_budget(
                fields.get('budget_s', models.DEFAULT_BUDGET_S))
        except lifecycle.InvalidRequest as e:
            raise web.HTTPError(400, str(e)) from e
        run = common.queue_planned(lambda: inplace.plan_in_place(
            service.clients(caller), set_id, devices), lambda plan:
            lifecycle.queue_restore(caller, plan.snapshot_set, devices, None,
                                    in_place=True, budget_s=budget_s))
    else:
        attach_to = common.server_id(fields, 'attach_to', required=False)
        run = common.queue_planned(lambda: restore.plan_restore(
            service.clients(caller), set_id, devices, attach_to),
            lambda plan: lifecycle.queue_restore(
                caller, plan.snapshot_set, devices, attach_to))
    return web.json_response(202, {'run': runs.view(run)}, headers={
        'Location': '%s/v1/runs/%s' % (request.application_url, run.pk)})
