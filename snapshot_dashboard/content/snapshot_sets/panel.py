from django.utils.translation import gettext_lazy as _
import horizon


class SnapshotSets(horizon.Panel):
    name = _("Snapshot Sets")
    slug = 'snapshot_sets'
    permissions = ('openstack.services.compute', 'openstack.services.image')
    policy_rules = (("compute", "os_compute_api:snapshot"),)
