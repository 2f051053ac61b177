"""One row of the Snapshot Sets table: a set, or a run still making one
(or that failed to)."""

from django.utils import dateparse
from django.utils.translation import gettext_lazy as _

from snapshot_dashboard import models
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import sets

RUN_PREFIX = 'run-'
STEP_LABELS = {
    events.PLAN: _('Planning'),
    events.PREFLIGHT: _('Checking quotas and agent'),
    events.OPEN_WINDOW: _('Holding the guest'),
    events.CAPTURE: _('Capturing'),
    events.CLOSE_WINDOW: _('Releasing the guest'),
    events.PACKAGE: _('Packaging'), events.UPLOAD: _('Uploading'),
    events.ROLLBACK: _('Rolling back'),
}


class Row:
    def __init__(self, snapshot_set=None, run=None, server_name=None):
        self.set = snapshot_set
        self.run = run
        if snapshot_set is not None:
            self.id = snapshot_set.id
            self.name = snapshot_set.name
            self.server_id = snapshot_set.server_id
            self.created_at = dateparse.parse_datetime(
                snapshot_set.created_at or '')
            self.drives = [d.name for d in snapshot_set.drives]
            self.consistency = snapshot_set.consistency
            self.window_ms = snapshot_set.window_ms
            self.status = snapshot_set.status
            self.project_id = snapshot_set.project_id
            self.error = ''
        else:
            self.id = RUN_PREFIX + str(run.id)
            self.name = run.name or _('%s (being taken)') % (
                server_name or run.server_name or run.server_id)
            self.server_id = run.server_id
            self.created_at = run.created_at
            self.drives = sorted(run.drives) or (
                run.devices or [_('all drives')])
            self.consistency = run.achieved_consistency or None
            self.window_ms = run.window_ms
            self.status = run.state
            self.project_id = run.project_id
            self.error = run.error
        self.server_name = server_name or self.server_id

    @property
    def is_run(self):
        return self.set is None

    @property
    def bootable(self):
        return self.set is not None and self.set.bootable

    @property
    def status_text(self):
        if self.set is not None:
            return {sets.AVAILABLE: _('Available'),
                    sets.CREATING: _('Uploading'),
                    sets.DELETING: _('Deleting'),
                    sets.ERROR: _('Error')}.get(self.status, self.status)
        run = self.run
        if run.state == models.QUEUED:
            return _('Queued')
        if run.state == models.FAILED:
            return _('Failed: %s') % run.error
        if run.state == models.SUCCEEDED:
            return _('Done')
        step = STEP_LABELS.get(run.step, run.step or _('Starting'))
        drives = ', '.join('%s %s' % (name, state)
                           for name, state in sorted(run.drives.items()))
        return '%s (%s)' % (step, drives) if drives else step


def rows(snapshot_sets, runs, server_names):
    """Runs whose set is not listed yet first, then the sets, newest
    first."""
    listed = {s.run_id for s in snapshot_sets}
    return ([Row(run=run, server_name=server_names.get(run.server_id))
             for run in runs if str(run.id) not in listed]
            + [Row(snapshot_set=s,
                   server_name=server_names.get(s.server_id))
               for s in snapshot_sets])
