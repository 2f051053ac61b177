from django.template import defaultfilters as filters
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.orchestration import timing


class CreateSchedule(tables.LinkAction):
    name = 'create'
    verbose_name = _("Create Schedule")
    url = 'horizon:project:backup_schedules:choose'
    classes = ('ajax-modal',)
    icon = 'plus'
    policy_rules = (("compute", "os_compute_api:snapshot"),)


class EditSchedule(tables.LinkAction):
    name = 'edit'
    verbose_name = _("Edit Schedule")
    url = 'horizon:project:backup_schedules:edit'
    classes = ('ajax-modal',)
    icon = 'pencil'


class RunNow(tables.BatchAction):
    name = 'run_now'
    help_text = _("A run is queued now; the schedule's timing is unchanged.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Run Now", "Run Now", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Queued a run of", "Queued runs of", count)

    def allowed(self, request, schedule=None):
        return schedule is None or not schedule.broken_reason

    def action(self, request, obj_id):
        api.run_schedule_now(request, obj_id)


class PauseSchedule(tables.BatchAction):
    name = 'pause'

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Pause Schedule", "Pause Schedules", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Paused Schedule", "Paused Schedules", count)

    def allowed(self, request, schedule=None):
        return schedule is None or schedule.enabled

    def action(self, request, obj_id):
        api.set_schedule_enabled(request, obj_id, False)


class ResumeSchedule(tables.BatchAction):
    name = 'resume'

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Resume Schedule", "Resume Schedules", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Resumed Schedule", "Resumed Schedules", count)

    def allowed(self, request, schedule=None):
        return schedule is None or (not schedule.enabled
                                    and not schedule.broken_reason)

    def action(self, request, obj_id):
        api.set_schedule_enabled(request, obj_id, True)


class DeleteSchedule(tables.DeleteAction):
    help_text = _("The schedule and the permission it holds are deleted; "
                  "the sets it made are kept.")

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Schedule", "Delete Schedules", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Schedule", "Deleted Schedules", count)

    def delete(self, request, obj_id):
        api.delete_schedule(request, obj_id)


def drives(schedule):
    if schedule.devices is None:
        return _('All drives')
    return ', '.join(schedule.devices)


def timing_words(schedule):
    return timing.describe(schedule.timing, schedule.cron, schedule.timezone,
                           schedule.minute, schedule.hour, schedule.weekday)


def next_run_words(schedule):
    """The next run in the schedule's own timezone, as its timing reads."""
    if schedule.next_run_at is None:
        return '-'
    local = schedule.next_run_at.astimezone(timing.zone(schedule.timezone))
    return local.strftime('%Y-%m-%d %H:%M %Z')


def retention_words(schedule):
    return schedule.rules().describe()


def last_result(schedule):
    run = schedule.runs.order_by('-created_at').first()
    if run is None:
        return _('Not run yet')
    text = '%s %s' % (run.get_state_display(),
                      filters.date(run.created_at, 'Y-m-d H:i'))
    return '%s: %s' % (text, run.error) if run.error else text


def state(schedule):
    if schedule.broken_reason:
        return _('Broken: %s') % schedule.broken_reason
    return _('Enabled') if schedule.enabled else _('Paused')


class SchedulesTable(tables.DataTable):
    name = tables.Column('name', verbose_name=_("Name"),
                         link='horizon:project:backup_schedules:detail')
    server = tables.Column(lambda s: s.server_name or s.server_id,
                           verbose_name=_("Instance"))
    drives = tables.Column(drives, verbose_name=_("Drives"))
    timing = tables.Column(timing_words, verbose_name=_("Timing"))
    next_run = tables.Column(next_run_words, verbose_name=_("Next Run"))
    retention = tables.Column(retention_words, verbose_name=_("Retention"))
    last = tables.Column(last_result, verbose_name=_("Last Result"))
    state = tables.Column(state, verbose_name=_("State"))

    class Meta:
        name = 'backup_schedules'
        verbose_name = _("Backup Schedules")
        table_actions = (CreateSchedule, DeleteSchedule)
        row_actions = (EditSchedule, RunNow, PauseSchedule, ResumeSchedule,
                       DeleteSchedule)


class RunsTable(tables.DataTable):
    created = tables.Column('created_at', verbose_name=_("Queued"),
                            filters=(lambda when: filters.date(
                                when, 'Y-m-d H:i:s'),))
    state = tables.Column(lambda run: run.get_state_display(),
                          verbose_name=_("State"))
    set_id = tables.Column('set_id', verbose_name=_("Snapshot Set"),
                           empty_value='-')
    consistency = tables.Column('achieved_consistency',
                                verbose_name=_("Consistency"),
                                empty_value='-')
    error = tables.Column('error', verbose_name=_("Why it failed"),
                          empty_value='')
    cleanup = tables.Column('cleanup', verbose_name=_("Retention"),
                            empty_value='')

    class Meta:
        name = 'runs'
        verbose_name = _("Runs")


class DoomedTable(tables.DataTable):
    name = tables.Column('name', verbose_name=_("Name"))
    created = tables.Column('created_at', verbose_name=_("Created"))
    set_id = tables.Column('id', verbose_name=_("ID"))

    class Meta:
        name = 'doomed'
        verbose_name = _("Deleted after the next run")
