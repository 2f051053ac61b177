from django import forms as django_forms
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import messages

from snapshot_dashboard.api import snapshots as api
from snapshot_dashboard.content import labels
from snapshot_dashboard.orchestration import errors


class LaunchForm(forms.SelfHandlingForm):
    """Boot a new instance from a set: its root from the set's image, every
    volume recreated from its snapshot."""

    set_id = forms.CharField(widget=forms.HiddenInput())
    name = forms.CharField(max_length=255, label=_("Instance Name"))
    flavor = forms.ThemableChoiceField(label=_("Flavor"))
    network = forms.ThemableChoiceField(label=_("Network"), required=False)

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        flavors = kwargs.get('initial', {}).get('flavors', [])
        self.fields['flavor'].choices = [(f.id, f.name) for f in flavors]
        networks = kwargs.get('initial', {}).get('networks', [])
        if networks:
            self.fields['network'].required = True
            self.fields['network'].choices = [(n.id, n.name)
                                              for n in networks]
        else:
            self.fields['network'].widget = forms.HiddenInput()

    def handle(self, request, data):
        try:
            server = api.launch_from_set(request, data['set_id'],
                                         data['name'], data['flavor'],
                                         data.get('network') or None)
        except Exception:
            redirect = reverse('horizon:project:snapshot_sets:index')
            exceptions.handle(request, _('Unable to launch an instance from '
                                         'the snapshot set.'),
                              redirect=redirect)
            return False
        messages.success(request, _('Launching instance "%s".')
                         % data['name'])
        return server


class RestoreForm(forms.SelfHandlingForm):
    """Restore the ticked drives of a set into its instance, in place."""

    set_id = forms.CharField(widget=forms.HiddenInput())
    devices = forms.MultipleChoiceField(
        label=_("Drives"), required=True,
        widget=forms.ThemableCheckboxSelectMultiple(),
        help_text=_("Every ticked drive is put back as the set holds it; "
                    "the others are not touched."))

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        drives = sorted(kwargs.get('initial', {}).get('drives', []),
                        key=lambda d: d.name)
        self.fields['devices'].choices = [
            (d.name, '%s - %s - %d GB' % (d.name, labels.KIND_LABELS.get(
                d.kind, d.kind), d.size_gb)) for d in drives]
        self.fields['devices'].initial = [d.name for d in drives]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get('devices'):
            try:
                api.check_restore_in_place(self.request, cleaned['set_id'],
                                           cleaned['devices'])
            except errors.SnapshotSetError as e:
                raise django_forms.ValidationError(str(e)) from e
        return cleaned

    def handle(self, request, data):
        try:
            run = api.restore_in_place(request, data['set_id'],
                                       list(data['devices']))
        except Exception:
            exceptions.handle(request, _('Unable to queue the restore.'),
                              redirect=reverse(
                                  'horizon:project:snapshot_sets:index'))
            return False
        messages.success(request, _('Restore of %s queued: the instance is '
                                    'stopped while its drives are '
                                    'replaced.') % ', '.join(data['devices']))
        return run
