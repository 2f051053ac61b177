"""The routes of the REST API, ``{path: {METHOD: handler}}``."""

from snapshot_dashboard.restapi.handlers import reaped
from snapshot_dashboard.restapi.handlers import runs
from snapshot_dashboard.restapi.handlers import schedules
from snapshot_dashboard.restapi.handlers import sets
from snapshot_dashboard.restapi.handlers import versions

ROUTES = {
    '/': {'GET': versions.list_versions},
    '/v1/?': {'GET': versions.show_version},
    '/v1/runs': {'GET': runs.list_runs, 'POST': runs.create_run},
    '/v1/runs/{run_id}': {'GET': runs.show_run},
    '/v1/runs/{run_id}/undo': {'POST': runs.undo_run},
    '/v1/reaped': {'GET': reaped.list_reaped},
    '/v1/sets': {'GET': sets.list_sets},
    '/v1/sets/{set_id}': {'GET': sets.show_set, 'DELETE': sets.delete_set},
    '/v1/sets/{set_id}/restore': {'POST': sets.restore_set},
    '/v1/schedules': {'GET': schedules.list_schedules,
                      'POST': schedules.create_schedule},
    '/v1/schedules/{schedule_id}': {
        'GET': schedules.show_schedule, 'PUT': schedules.update_schedule,
        'DELETE': schedules.delete_schedule},
    '/v1/schedules/{schedule_id}/pause': {'POST': schedules.pause_schedule},
    '/v1/schedules/{schedule_id}/resume': {
        'POST': schedules.resume_schedule},
    '/v1/schedules/{schedule_id}/run': {'POST': schedules.run_schedule},
}
