from django.urls import reverse
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from django.views import generic
from horizon import exceptions
from horizon import forms
from horizon import tables
from horizon import workflows
from openstack_dashboard import api as dashboard_api

from snapshot_dashboard import models
from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content.snapshot_sets import forms as set_forms
from snapshot_dashboard.content.snapshot_sets import rows
from snapshot_dashboard.content.snapshot_sets import tables as set_tables
from snapshot_dashboard.content.snapshot_sets import workflows as set_workflows
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import plan as plan_module

INDEX_URL = 'horizon:project:snapshot_sets:index'


class PagedSetsView(tables.DataTableView):
    """A page of sets at a time, after the marker of Horizon's "Next"
    link: the API calls and the rendering of a page do not grow with the
    number of sets."""

    all_projects = False
    _next_marker = None

    def has_more_data(self, table):
        table.next_marker = self._next_marker
        return self._next_marker is not None

    def get_data(self):
        marker = self.request.GET.get(
            self.table_class._meta.pagination_param)
        try:
            try:
                snapshot_sets, next_marker = api.page_sets(
                    self.request, marker=marker,
                    all_projects=self.all_projects)
            except errors.SetNotFound:
                # Not a set's id, or one deleted since: the first page.
                marker = None
                snapshot_sets, next_marker = api.page_sets(
                    self.request, marker=None,
                    all_projects=self.all_projects)
            names = api.server_names(self.request,
                                     all_projects=self.all_projects)
        except Exception:
            exceptions.handle(self.request,
                              _('Unable to retrieve snapshot sets.'))
            return []
        self._next_marker = next_marker
        # Runs still taking their set lead the first page only.
        runs = self.runs() if not marker else []
        return rows.rows(snapshot_sets, runs, names)

    def runs(self):
        return []


class IndexView(PagedSetsView):
    """The project's sets and the runs making them."""

    table_class = set_tables.SnapshotSetsTable
    page_title = _("Snapshot Sets")

    def runs(self):
        return api.list_runs(self.request)


class DetailView(tables.DataTableView):
    table_class = set_tables.DrivesTable
    template_name = 'snapshot_dashboard/snapshot_sets/detail.html'
    page_title = _("Snapshot Set: {{ snapshot_set.name }}")

    def _set(self):
        if not hasattr(self, '_snapshot_set'):
            try:
                self._snapshot_set = api.get_set(self.request,
                                                 self.kwargs['set_id'])
            except Exception:
                exceptions.handle(self.request,
                                  _('Unable to retrieve the snapshot set.'),
                                  redirect=reverse(INDEX_URL))
        return self._snapshot_set

    def get_data(self):
        return self._set().drives

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context['snapshot_set'] = self._set()
        context['url'] = reverse(INDEX_URL)
        return context


class RunDetailView(generic.TemplateView):
    template_name = 'snapshot_dashboard/snapshot_sets/run.html'

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            context['run'] = api.get_run(self.request, kwargs['run_id'])
        except (models.SnapshotRun.DoesNotExist, ValueError):
            exceptions.handle(self.request, _('No such snapshot run.'),
                              redirect=reverse(INDEX_URL))
        context['page_title'] = _('Snapshot run of %s') % (
            context['run'].server_name or context['run'].server_id)
        context['url'] = reverse(INDEX_URL)
        return context


class CreateView(workflows.WorkflowView):
    workflow_class = set_workflows.CreateSnapshotSet

    def get_initial(self):
        instance_id = self.kwargs['instance_id']
        try:
            preflight = api.preflight(self.request, instance_id)
        except Exception as e:
            # The orchestration's errors say why in the user's words.
            exceptions.handle(self.request,
                              str(e) if isinstance(
                                  e, errors.SnapshotSetError) else
                              _('Unable to read the instance and its '
                                'drives.'),
                              redirect=reverse(
                                  'horizon:project:instances:index'))
        return {'instance_id': instance_id, 'preflight': preflight}


class RestoreView(forms.ModalFormView):
    """One checkbox per drive of the set that can be restored in place,
    all ticked, beside what the restore will change."""

    form_class = set_forms.RestoreForm
    template_name = 'snapshot_dashboard/snapshot_sets/restore.html'
    modal_id = 'restore_set_modal'
    modal_header = _("Restore Snapshot Set in Place")
    submit_label = _("Restore")
    submit_url = 'horizon:project:snapshot_sets:restore'
    success_url = reverse_lazy(INDEX_URL)
    page_title = _("Restore Snapshot Set")

    def get_initial(self):
        set_id = self.kwargs['set_id']
        try:
            self.plan, self.refused = api.restore_preview(self.request,
                                                          set_id)
        except Exception as e:
            exceptions.handle(self.request,
                              str(e) if isinstance(
                                  e, errors.SnapshotSetError) else
                              _('Unable to read the set and its instance.'),
                              redirect=reverse(INDEX_URL))
        return {'set_id': set_id,
                'drives': self.plan.drives if self.plan else []}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context['submit_url'] = reverse(self.submit_url,
                                        args=[self.kwargs['set_id']])
        plan = getattr(self, 'plan', None)
        context['changes'] = plan.changes() if plan else []
        context['refused'] = sorted(getattr(self, 'refused', {}).items())
        return context

    def get_success_url_from_handled(self, run):
        return reverse('horizon:project:snapshot_sets:run', args=[run.pk])


class LaunchView(forms.ModalFormView):
    form_class = set_forms.LaunchForm
    template_name = 'snapshot_dashboard/snapshot_sets/launch.html'
    modal_id = 'launch_from_set_modal'
    modal_header = _("Launch Instance from Snapshot Set")
    submit_label = _("Launch")
    submit_url = 'horizon:project:snapshot_sets:launch'
    success_url = reverse_lazy('horizon:project:instances:index')
    page_title = _("Launch Instance")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context['submit_url'] = reverse(self.submit_url,
                                        args=[self.kwargs['set_id']])
        # Nova boots the flavor's blank ephemeral disk: the set's copy of
        # it is not written back (restore it as a new volume instead).
        snapshot_set = getattr(self, 'snapshot_set', None)
        context['ephemeral_drives'] = [
            d.name for d in (snapshot_set.drives if snapshot_set else [])
            if d.kind == plan_module.EPHEMERAL]
        return context

    def get_initial(self):
        set_id = self.kwargs['set_id']
        try:
            snapshot_set = self.snapshot_set = api.get_set(self.request,
                                                           set_id)
            flavors = dashboard_api.nova.flavor_list(self.request)
        except Exception:
            exceptions.handle(self.request,
                              _('Unable to prepare the launch.'),
                              redirect=reverse(INDEX_URL))
        try:
            networks = dashboard_api.neutron.network_list_for_tenant(
                self.request, self.request.user.project_id)
        except Exception:
            networks = []  # a cloud without Neutron: boot with no network
        return {'set_id': set_id, 'name': '%s-copy' % snapshot_set.name,
                'flavors': flavors, 'networks': networks}
