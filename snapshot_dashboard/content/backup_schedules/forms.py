"""Create and edit a backup schedule: the same per-drive checkboxes as the
workflow, a timing, retention. Bad input is a form error and saves
nothing."""

import zoneinfo

from django import forms as django_forms
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import messages

from snapshot_dashboard import lifecycle
from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content import labels
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import timing as timing_module
from snapshot_dashboard.orchestration import window as window_module

INDEX_URL = 'horizon:project:backup_schedules:index'


def switched(**shown_as):
    """Horizon's switchable fields: shown for the timing choices named,
    with the label each gives."""
    attrs = {'class': 'switched', 'data-switch-on': 'timing'}
    attrs.update(('data-timing-%s' % choice, label)
                 for choice, label in shown_as.items())
    return attrs


class ScheduleForm(forms.SelfHandlingForm):
    instance_id = forms.CharField(widget=forms.HiddenInput())
    name = forms.CharField(max_length=255, label=_("Name"))
    all_drives = forms.BooleanField(
        label=_("All drives"), required=False, initial=True,
        help_text=_("Every drive at each run, drives attached later "
                    "included. Untick to choose the drives below."))
    devices = forms.MultipleChoiceField(
        label=_("Drives"), required=False,
        widget=forms.ThemableCheckboxSelectMultiple())
    consistency = forms.ThemableChoiceField(
        label=_("Consistency"), initial=window_module.AUTO,
        choices=labels.consistency_choices)
    timing = forms.ThemableChoiceField(
        label=_("Timing"), choices=[
            (timing_module.HOURLY, _("Hourly")),
            (timing_module.DAILY, _("Daily")),
            (timing_module.WEEKLY, _("Weekly")),
            (timing_module.CRON, _("Cron expression"))],
        initial=timing_module.DAILY,
        widget=forms.ThemableSelectWidget(attrs={
            'class': 'switchable', 'data-slug': 'timing'}))
    weekday = forms.ThemableChoiceField(
        label=_("Day"), required=False, initial=0,
        choices=list(enumerate(timing_module.DAYS)),
        widget=forms.ThemableSelectWidget(attrs=switched(weekly=_("Day"))))
    hour = forms.IntegerField(
        label=_("Hour"), min_value=0, max_value=23, initial=2,
        required=False, widget=forms.NumberInput(attrs=switched(
            daily=_("Hour"), weekly=_("Hour"))))
    minute = forms.IntegerField(
        label=_("Minute"), min_value=0, max_value=59, initial=0,
        required=False, widget=forms.NumberInput(attrs=switched(
            hourly=_("Minute"), daily=_("Minute"), weekly=_("Minute"))))
    cron = forms.CharField(
        label=_("Cron expression"), required=False,
        help_text=_("Five fields: minute hour day month weekday, e.g. "
                    "30 2 * * 1-5."),
        widget=forms.TextInput(attrs=switched(
            cron=_("Cron expression"))))
    timezone = forms.ThemableChoiceField(label=_("Timezone"))
    name_template = forms.CharField(
        max_length=255, label=_("Set names"),
        initial='{server} {schedule} {time}',
        help_text=_("{server}, {schedule} and {time} are replaced."))
    keep_last = forms.IntegerField(label=_("Keep the last"), min_value=0,
                                   initial=7)
    keep_daily = forms.IntegerField(label=_("Keep daily"), min_value=0,
                                    initial=0)
    keep_weekly = forms.IntegerField(label=_("Keep weekly"), min_value=0,
                                     initial=0)
    keep_monthly = forms.IntegerField(label=_("Keep monthly"), min_value=0,
                                      initial=0)

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        initial = kwargs.get('initial', {})
        self.preflight = initial.get('preflight')
        self.fields['devices'].choices = [
            (d.name, labels.drive_label(d))
            for d in (self.preflight.capturable if self.preflight else [])]
        self.fields['timezone'].choices = [
            (name, name) for name in sorted(zoneinfo.available_timezones())]
        self.server_name = initial.get('server_name', '')

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        data['weekday'] = int(data.get('weekday') or 0)
        try:
            data.update(lifecycle.check_schedule(data))
        except lifecycle.InvalidRequest as e:
            raise django_forms.ValidationError(str(e)) from e
        if data['all_drives']:
            data['devices'] = None
        elif not data['devices']:
            raise django_forms.ValidationError(_('Choose at least one '
                                                 'drive.'))
        try:
            api.check_selection(self.request, data['instance_id'],
                                data['devices'])
        except errors.SnapshotSetError as e:
            raise django_forms.ValidationError(str(e)) from e
        # The run would fail at every fire: say so now.
        refused = self.preflight.refused if self.preflight else {}
        if data['consistency'] in refused:
            raise django_forms.ValidationError(refused[data['consistency']])
        return data

    def fields_to_save(self, data):
        return {
            'server_id': data['instance_id'],
            'server_name': self.server_name, 'name': data['name'],
            'devices': data['devices'], 'consistency': data['consistency'],
            'timing': data['timing'], 'minute': data['minute'],
            'hour': data['hour'], 'weekday': data['weekday'],
            'cron': data['cron'],
            'timezone': data['timezone'],
            'name_template': data['name_template'],
            'keep_last': data['keep_last'],
            'keep_daily': data['keep_daily'],
            'keep_weekly': data['keep_weekly'],
            'keep_monthly': data['keep_monthly']}


class CreateScheduleForm(ScheduleForm):
    def handle(self, request, data):
        try:
            schedule = api.create_schedule(request,
                                           **self.fields_to_save(data))
        except Exception:
            exceptions.handle(request, _('Unable to create the schedule.'),
                              redirect=reverse(INDEX_URL))
            return False
        messages.success(request, _('Schedule "%s" created; next run %s.')
                         % (schedule.name, schedule.next_run_at))
        return schedule


class EditScheduleForm(ScheduleForm):
    schedule_id = forms.CharField(widget=forms.HiddenInput())

    def handle(self, request, data):
        try:
            schedule = api.update_schedule(request, data['schedule_id'],
                                           **self.fields_to_save(data))
        except Exception:
            exceptions.handle(request, _('Unable to update the schedule.'),
                              redirect=reverse(INDEX_URL))
            return False
        messages.success(request, _('Schedule "%s" updated.')
                         % schedule.name)
        return schedule


class ChooseServerForm(forms.SelfHandlingForm):
    instance_id = forms.ThemableChoiceField(label=_("Instance"))

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields['instance_id'].choices = sorted(
            ((server_id, name) for server_id, name in
             kwargs.get('initial', {}).get('servers', {}).items()),
            key=lambda item: item[1])

    def handle(self, request, data):
        return data['instance_id']
