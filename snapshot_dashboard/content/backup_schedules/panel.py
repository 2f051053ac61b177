from django.utils.translation import gettext_lazy as _
import horizon


class BackupSchedules(horizon.Panel):
    name = _("Backup Schedules")
    slug = 'backup_schedules'
    permissions = ('openstack.services.compute', 'openstack.services.image')
    policy_rules = (("compute", "os_compute_api:snapshot"),)
