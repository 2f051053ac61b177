"""``/v1/reaped``: what the reaper deleted (admins only)."""

from snapshot_dashboard import models
from snapshot_dashboard.restapi import policies
from snapshot_dashboard.restapi.handlers import common

LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000


def view(record):
    return {'kind': record.kind, 'id': record.resource_id,
            'run_id': record.run_id, 'project_id': record.project_id,
            'created_at': record.resource_created_at or None,
            'reaped_at': common.iso(record.reaped_at),
            'outcome': record.outcome}


def list_reaped(request, service):
    """Newest first; ``?project_id=``, ``?run_id=``, ``?limit=``."""
    caller = service.caller(request)
    service.authorize(request, policies.REAPED_LIST, caller.project_id)
    records = models.ReapedResource.objects.all()
    for key in ('project_id', 'run_id'):
        if request.GET.get(key):
            records = records.filter(**{key: request.GET[key]})
    limit = common.limit(request, LIST_LIMIT, MAX_LIST_LIMIT)
    return 200, {'reaped': [view(r) for r in records[:limit]]}
