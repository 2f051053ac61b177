"""``/v1/schedules``: backup schedules, the same as Horizon's page: the
same checks, the same trust, the same worker."""

from snapshot_dashboard import lifecycle
from snapshot_dashboard import models
from snapshot_dashboard import web
from snapshot_dashboard.orchestration import timing
from snapshot_dashboard.orchestration import window as window_module
from snapshot_dashboard.restapi import policies
from snapshot_dashboard.restapi.handlers import common
from snapshot_dashboard.restapi.handlers import runs

# What a caller sets; server_name comes from Nova.
FIELDS = tuple(f for f in lifecycle.SCHEDULE_FIELDS if f != 'server_name')
NUMBERS = ('minute', 'hour', 'weekday') + lifecycle.KEEP_FIELDS


def view(schedule):
    data = {field: getattr(schedule, field)
            for field in lifecycle.SCHEDULE_FIELDS}
    data.update({
        'id': str(schedule.pk), 'project_id': schedule.project_id,
        'user_id': schedule.user_id, 'user_name': schedule.user_name,
        'enabled': schedule.enabled,
        'broken_reason': schedule.broken_reason or None,
        'next_run_at': common.iso(schedule.next_run_at),
        'last_fired_at': common.iso(schedule.last_fired_at),
        'created_at': common.iso(schedule.created_at),
        'timing_description': timing.describe(
            schedule.timing, schedule.cron, schedule.timezone,
            schedule.minute, schedule.hour, schedule.weekday),
        'retention_description': schedule.rules().describe(),
    })
    return data


def _checked(service, caller, fields):
    """Every field of a schedule checked, against the server as it is
    now; returns what to save."""
    checked = {
        'name': common.text(fields, 'name', required=True),
        'server_id': common.server_id(fields),
        'devices': common.devices(fields),
        'consistency': common.choice(fields, 'consistency',
                                     window_module.LEVELS,
                                     window_module.AUTO),
        'timing': common.choice(fields, 'timing', timing.KINDS, None),
        'cron': common.text(fields, 'cron'),
        'timezone': common.text(fields, 'timezone', default='UTC'),
        'name_template': common.text(
            fields, 'name_template',
            default=lifecycle.SCHEDULE_FIELDS['name_template']),
    }
    for name in NUMBERS:
        checked[name] = common.whole_number(fields, name)
    try:
        checked = lifecycle.check_schedule(checked)
    except lifecycle.InvalidRequest as e:
        raise web.HTTPError(400, str(e)) from e
    preflight = service.preflight(service.clients(caller),
                                  checked['server_id'])
    # Quota is checked at every fire; the drives and the level now.
    try:
        common.check_selection(preflight, checked['devices'],
                               checked['consistency'])
    except web.HTTPError as e:
        if e.status != 403:
            raise
    checked['server_name'] = preflight.server_name
    return checked


def create_schedule(request, service):
    caller = service.caller(request)
    service.authorize(request, policies.SCHEDULE_CREATE, caller.project_id)
    fields = service.body(request, 'schedule', FIELDS)
    schedule = lifecycle.create_schedule(
        caller, **_checked(service, caller, fields))
    return web.json_response(201, {'schedule': view(schedule)}, headers={
        'Location': '%s/v1/schedules/%s' % (request.application_url,
                                             schedule.pk)})


def list_schedules(request, service):
    caller = service.caller(request)
    service.authorize(request, policies.SCHEDULE_LIST, caller.project_id)
    return 200, {'schedules': [view(s) for s in models.Schedule.objects
                               .filter(project_id=caller.project_id)]}


def _schedule(request, service, schedule_id, rule):
    caller = service.caller(request)
    schedule = common.get_or_404(models.Schedule.objects, 'schedule',
                                 schedule_id, project_id=caller.project_id)
    service.authorize(request, rule, schedule.project_id)
    return caller, schedule


def show_schedule(request, service, schedule_id):
    _, schedule = _schedule(request, service, schedule_id,
                            policies.SCHEDULE_GET)
    return 200, {'schedule': view(schedule)}


def update_schedule(request, service, schedule_id):
    """The fields given change; the others stay. A schedule stays on its
    server."""
    caller, schedule = _schedule(request, service, schedule_id,
                                 policies.SCHEDULE_UPDATE)
    fields = service.body(request, 'schedule', FIELDS)
    if fields.get('server_id', schedule.server_id) != schedule.server_id:
        raise web.HTTPError(400, 'A schedule stays on its server; create '
                                 'another for %s.' % fields['server_id'])
    merged = {field: getattr(schedule, field) for field in FIELDS}
    merged.update(fields)
    checked = _checked(service, caller, merged)
    return 200, {'schedule': view(lifecycle.update_schedule(schedule,
                                                            **checked))}


def delete_schedule(request, service, schedule_id):
    """The schedule and its trust go; its sets stay."""
    _, schedule = _schedule(request, service, schedule_id,
                            policies.SCHEDULE_DELETE)
    try:
        lifecycle.delete_schedule(schedule)
    except lifecycle.TrustNotDeleted as e:
        raise web.HTTPError(503, str(e)) from e
    return 204, None


def _not_broken(schedule):
    """409 for a schedule that no longer fires (its server or trust is
    gone): resuming or running it would only fail."""
    if schedule.broken_reason:
        raise web.HTTPError(409, 'Schedule %s no longer fires: %s'
                            % (schedule.name, schedule.broken_reason))


def _set_enabled(request, service, schedule_id, enabled):
    _, schedule = _schedule(request, service, schedule_id,
                            policies.SCHEDULE_UPDATE)
    if enabled:
        _not_broken(schedule)
    return 200, {'schedule': view(lifecycle.update_schedule(
        schedule, enabled=enabled))}


def pause_schedule(request, service, schedule_id):
    return _set_enabled(request, service, schedule_id, False)


def resume_schedule(request, service, schedule_id):
    return _set_enabled(request, service, schedule_id, True)


def run_schedule(request, service, schedule_id):
    """Queue a run of the schedule now; its timing stays."""
    _, schedule = _schedule(request, service, schedule_id,
                            policies.SCHEDULE_RUN)
    _not_broken(schedule)
    run = schedule.queue_run()
    return web.json_response(202, {'run': runs.view(run)}, headers={
        'Location': '%s/v1/runs/%s' % (request.application_url, run.pk)})
