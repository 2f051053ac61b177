from django.utils.translation import gettext_lazy as _
import horizon


class AdminSnapshotSets(horizon.Panel):
    name = _("Snapshot Sets")
    slug = 'snapshot_sets'
    permissions = ('openstack.roles.admin', 'openstack.services.compute')
    policy_rules = (("compute", "context_is_admin"),)
