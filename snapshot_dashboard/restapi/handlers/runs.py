"""``/v1/runs``: take a snapshot set (queue a run for the worker) and
follow it step by step."""

from snapshot_dashboard import lifecycle
from snapshot_dashboard import models
from snapshot_dashboard import web
from snapshot_dashboard.orchestration import inplace
from snapshot_dashboard.orchestration import window as window_module
from snapshot_dashboard.restapi import policies
from snapshot_dashboard.restapi.handlers import common

FIELDS = ('server_id', 'devices', 'consistency', 'name', 'description',
          'budget_s')
LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


def view(run):
    """A run as the API shows it: no trust, no lease, no worker."""
    return {
        'id': str(run.pk), 'action': run.action,
        'attach_to': run.attach_to or None, 'project_id': run.project_id,
        'user_id': run.user_id, 'server_id': run.server_id,
        'server_name': run.server_name, 'devices': run.devices,
        'name': run.name, 'description': run.description,
        'consistency': run.consistency, 'budget_s': run.budget_s,
        'schedule_id': str(run.schedule_id) if run.schedule_id else None,
        'state': run.state, 'step': run.step, 'drives': run.drives,
        'events': [{k: v for k, v in event.items() if k != 'window'}
                   for event in run.events],
        'resources': run.resources,
        'achieved_consistency': run.achieved_consistency or None,
        'window_ms': run.window_ms, 'set_id': run.set_id or None,
        'undo_set_id': run.undo_set_id or None,
        'error': run.error or None, 'cleanup': run.cleanup or None,
        'attempts': run.attempts, 'created_at': common.iso(run.created_at),
        'started_at': common.iso(run.started_at),
        'finished_at': common.iso(run.finished_at),
    }


def create_run(request, service):
    """Check everything against the server as it is now, then queue the
    run with a trust from the caller; nothing is made if a check fails."""
    caller = service.caller(request)
    service.authorize(request, policies.RUN_CREATE, caller.project_id)
    fields = service.body(request, 'run', FIELDS)
    server_id = common.server_id(fields)
    devices = common.devices(fields)
    consistency = common.choice(fields, 'consistency', window_module.LEVELS,
                                window_module.AUTO)
    name = common.text(fields, 'name')
    description = common.text(fields, 'description')
    try:
        budget_s = lifecycle.check_budget(
            fields.get('budget_s', models.DEFAULT_BUDGET_S))
    except lifecycle.InvalidRequest as e:
        raise web.HTTPError(400, str(e)) from e
    preflight = service.preflight(service.clients(caller), server_id)
    common.check_selection(preflight, devices, consistency)
    run = lifecycle.queue_run(caller, server_id, preflight.server_name,
                              devices, name, description, consistency,
                              budget_s)
    return web.json_response(202, {'run': view(run)}, headers={
        'Location': '%s/v1/runs/%s' % (request.application_url, run.pk)})


def list_runs(request, service):
    """The project's runs, newest first; ``?state=``, ``?server_id=``,
    ``?limit=``."""
    caller = service.caller(request)
    service.authorize(request, policies.RUN_LIST, caller.project_id)
    runs = models.SnapshotRun.objects.filter(project_id=caller.project_id)
    state = request.GET.get('state')
    if state:
        if state not in dict(models.SnapshotRun.STATES):
            raise web.HTTPError(400, 'state must be one of %s.' % ', '.join(
                dict(models.SnapshotRun.STATES)))
        runs = runs.filter(state=state)
    if request.GET.get('server_id'):
        runs = runs.filter(server_id=request.GET['server_id'])
    limit = common.limit(request, LIST_LIMIT, MAX_LIST_LIMIT)
    return 200, {'runs': [view(run) for run in
                          runs.order_by('-created_at')[:limit]]}


def undo_run(request, service, run_id):
    """Undo a restore in place that succeeded: its safety set restored in
    place (every drive), checked now, queued; 202 with the new run."""
    caller = service.caller(request)
    run = common.get_or_404(models.SnapshotRun.objects, 'run', run_id,
                            project_id=caller.project_id)
    service.authorize(request, policies.RUN_UNDO, run.project_id)
    if run.action != models.RESTORE_IN_PLACE or not run.undo_set_id or \
            run.state != models.SUCCEEDED:
        raise web.HTTPError(409, 'Run %s is not a restore in place that '
                            'succeeded: there is nothing to undo.' % run.pk)
    undo = common.queue_planned(lambda: inplace.plan_in_place(
        service.clients(caller), run.undo_set_id), lambda plan:
        lifecycle.queue_restore(caller, plan.snapshot_set, None, None,
                                in_place=True, budget_s=run.budget_s))
    return web.json_response(202, {'run': view(undo)}, headers={
        'Location': '%s/v1/runs/%s' % (request.application_url, undo.pk)})


def show_run(request, service, run_id):
    caller = service.caller(request)
    run = common.get_or_404(models.SnapshotRun.objects, 'run', run_id,
                            project_id=caller.project_id)
    service.authorize(request, policies.RUN_GET, run.project_id)
    return 200, {'run': view(run)}
