from django import http
from django.urls import reverse
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import tables

from snapshot_dashboard import models
from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content.backup_schedules import forms as schedule_forms
from snapshot_dashboard.content.backup_schedules import (
    tables as schedule_tables,
)

INDEX_URL = 'horizon:project:backup_schedules:index'


class IndexView(tables.DataTableView):
    table_class = schedule_tables.SchedulesTable
    page_title = _("Backup Schedules")

    def get_data(self):
        return api.list_schedules(self.request)


class ChooseServerView(forms.ModalFormView):
    form_class = schedule_forms.ChooseServerForm
    template_name = 'snapshot_dashboard/backup_schedules/choose.html'
    modal_header = _("Create Schedule")
    submit_label = _("Next")
    submit_url = reverse_lazy('horizon:project:backup_schedules:choose')
    page_title = _("Create Schedule")

    def get_initial(self):
        try:
            return {'servers': api.server_names(self.request)}
        except Exception:
            exceptions.handle(self.request, _('Unable to list instances.'),
                              redirect=reverse(INDEX_URL))

    def form_valid(self, form):
        return http.HttpResponseRedirect(reverse(
            'horizon:project:backup_schedules:create',
            args=[form.cleaned_data['instance_id']]))


class _ScheduleFormView(forms.ModalFormView):
    template_name = 'snapshot_dashboard/backup_schedules/schedule.html'
    success_url = reverse_lazy(INDEX_URL)

    def _preflight(self, instance_id):
        try:
            return api.preflight(self.request, instance_id)
        except Exception:
            exceptions.handle(self.request,
                              _('Unable to read the instance and its '
                                'drives.'), redirect=reverse(INDEX_URL))


class CreateView(_ScheduleFormView):
    form_class = schedule_forms.CreateScheduleForm
    modal_header = _("Schedule Backups")
    submit_label = _("Create Schedule")
    page_title = _("Schedule Backups")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context['submit_url'] = reverse(
            'horizon:project:backup_schedules:create',
            args=[self.kwargs['instance_id']])
        return context

    def get_initial(self):
        instance_id = self.kwargs['instance_id']
        preflight = self._preflight(instance_id)
        return {'instance_id': instance_id, 'preflight': preflight,
                'server_name': preflight.server_name,
                'name': _('Backups of %s') % preflight.server_name,
                'timezone': self.request.session.get('django_timezone',
                                                     'UTC')}


class EditView(_ScheduleFormView):
    form_class = schedule_forms.EditScheduleForm
    modal_header = _("Edit Schedule")
    submit_label = _("Save")
    page_title = _("Edit Schedule")

    def _schedule(self):
        try:
            return api.get_schedule(self.request, self.kwargs['schedule_id'])
        except (models.Schedule.DoesNotExist, ValueError):
            exceptions.handle(self.request, _('No such schedule.'),
                              redirect=reverse(INDEX_URL))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context['submit_url'] = reverse(
            'horizon:project:backup_schedules:edit',
            args=[self.kwargs['schedule_id']])
        return context

    def get_initial(self):
        schedule = self._schedule()
        preflight = self._preflight(schedule.server_id)
        initial = {field: getattr(schedule, field) for field in (
            'name', 'consistency', 'timing', 'minute', 'hour', 'weekday',
            'cron', 'timezone', 'name_template', 'keep_last', 'keep_daily',
            'keep_weekly', 'keep_monthly')}
        initial.update(
            schedule_id=str(schedule.id), instance_id=schedule.server_id,
            preflight=preflight, server_name=schedule.server_name,
            all_drives=schedule.devices is None,
            devices=schedule.devices or [])
        return initial


class DetailView(tables.MultiTableView):
    table_classes = (schedule_tables.RunsTable, schedule_tables.DoomedTable)
    template_name = 'snapshot_dashboard/backup_schedules/detail.html'
    page_title = _("Backup Schedule: {{ schedule.name }}")

    def _schedule(self):
        if not hasattr(self, '_cached'):
            try:
                self._cached = api.get_schedule(self.request,
                                                self.kwargs['schedule_id'])
            except (models.Schedule.DoesNotExist, ValueError):
                exceptions.handle(self.request, _('No such schedule.'),
                                  redirect=reverse(INDEX_URL))
        return self._cached

    def get_runs_data(self):
        return list(self._schedule().runs.order_by('-created_at')[:50])

    def get_doomed_data(self):
        try:
            return api.retention_preview(self.request, self._schedule())
        except Exception:
            exceptions.handle(self.request, _('Unable to list the '
                                              'schedule\'s sets.'))
            return []

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        schedule = self._schedule()
        context['schedule'] = schedule
        context['timing'] = schedule_tables.timing_words(schedule)
        context['retention'] = schedule_tables.retention_words(schedule)
        context['drives'] = schedule_tables.drives(schedule)
        context['state'] = schedule_tables.state(schedule)
        context['next_run'] = schedule_tables.next_run_words(schedule)
        context['url'] = reverse(INDEX_URL)
        return context
