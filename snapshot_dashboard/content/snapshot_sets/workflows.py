"""Create Consistent Snapshot: pick the drives, then the options.

The pre-flight box (guest agent, the consistency the user will get, the
quotas) is computed once when the workflow opens and shown beside the
drives; the choice is checked again on submit, before anything is made.
"""

from django import forms as django_forms
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import workflows

from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content import labels
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import window as window_module

INDEX_URL = 'horizon:project:snapshot_sets:index'


class DrivesAction(workflows.Action):
    devices = forms.MultipleChoiceField(
        label=_("Drives"), required=True,
        widget=forms.ThemableCheckboxSelectMultiple(),
        help_text=_("Every ticked drive is captured at the same instant."))

    class Meta:
        name = _("Drives")
        slug = 'drives'

    def __init__(self, request, context, *args, **kwargs):
        super().__init__(request, context, *args, **kwargs)
        self.preflight = context['preflight']
        drives = self.preflight.capturable
        self.fields['devices'].choices = [(d.name, labels.drive_label(d))
                                          for d in drives]
        self.fields['devices'].initial = [d.name for d in drives]

    def get_help_text(self, extra_context=None):
        return render_to_string(
            'snapshot_dashboard/snapshot_sets/_preflight.html',
            {'preflight': self.preflight,
             'level_labels': labels.LEVEL_LABELS},
            self.request)

    def clean(self):
        cleaned = super().clean()
        devices = cleaned.get('devices')
        if not devices:
            return cleaned
        try:
            checks = api.check_selection(self.request,
                                         self.initial['instance_id'],
                                         devices)
        except errors.SnapshotSetError as e:
            raise django_forms.ValidationError(str(e)) from e
        short = [c for c in checks if not c.ok]
        if short:
            raise django_forms.ValidationError(
                _('Not enough quota for these drives: %s.')
                % '; '.join(c.describe() for c in short))
        return cleaned


class SelectDrives(workflows.Step):
    action_class = DrivesAction
    depends_on = ('instance_id', 'preflight')
    contributes = ('devices',)


class OptionsAction(workflows.Action):
    name = forms.CharField(max_length=255, label=_("Set Name"),
                           required=False,
                           help_text=_("By default the instance's name and "
                                       "the time."))
    consistency = forms.ThemableChoiceField(
        label=_("Consistency"), choices=labels.consistency_choices,
        initial=window_module.AUTO)
    description = forms.CharField(widget=forms.Textarea(attrs={'rows': 3}),
                                  label=_("Description"), required=False)

    class Meta:
        name = _("Options")
        slug = 'options'
        help_text = _("Application consistency freezes the filesystems "
                      "through the guest agent while every drive is "
                      "captured; crash consistency holds the instance still "
                      "instead, as after a power cut.")

    def clean_consistency(self):
        level = self.cleaned_data['consistency']
        refused = self.initial['preflight'].refused
        if level in refused:
            raise django_forms.ValidationError(refused[level])
        return level


class SetOptions(workflows.Step):
    action_class = OptionsAction
    depends_on = ('preflight',)
    contributes = ('name', 'consistency', 'description')


class CreateSnapshotSet(workflows.Workflow):
    slug = 'create_snapshot_set'
    name = _("Create Consistent Snapshot")
    finalize_button_name = _("Create Snapshot Set")
    success_message = _('Snapshot set of "%s" queued.')
    failure_message = _('Unable to queue a snapshot set of "%s".')
    success_url = INDEX_URL
    default_steps = (SelectDrives, SetOptions)

    def format_status_message(self, message):
        return message % (self.context['preflight'].server_name
                          or self.context['instance_id'])

    def handle(self, request, context):
        try:
            api.create_run(request, context['instance_id'],
                           context['preflight'].server_name,
                           list(context['devices']), context['name'],
                           context['description'], context['consistency'])
        except Exception:
            exceptions.handle(request, ignore=True)
            return False
        return True
