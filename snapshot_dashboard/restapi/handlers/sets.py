"""``/v1/sets``: the project's snapshot sets, shown and deleted whole."""

import dataclasses

from snapshot_dashboard import web
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.restapi import policies


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
