from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import messages

from snapshot_dashboard.api import snapshots as api


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
