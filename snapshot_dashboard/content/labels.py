"""The words the panels show for the core's values: consistency levels and
kinds of drive, shared by the snapshot workflow and the schedule form."""

from django.utils.translation import gettext_lazy as _

from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import window as window_module

LEVEL_LABELS = {
    window_module.AUTO: _('Automatic'),
    window_module.APPLICATION: _('Application'),
    window_module.CRASH: _('Crash'),
    window_module.NONE: _('None'),
}
KIND_LABELS = {
    plan_module.ROOT_IMAGE: _('root image'),
    plan_module.ROOT_VOLUME: _('root volume'),
    plan_module.EPHEMERAL: _('ephemeral'),
    plan_module.VOLUME: _('volume'),
}


def consistency_choices():
    """The consistency field's choices: each level and what it gives."""
    return [(level, '%s: %s' % (LEVEL_LABELS[level],
                                window_module.LEVEL_HELP[level]))
            for level in window_module.LEVELS]


def drive_label(drive):
    """A drive of a pre-flight (``preflight.DriveChoice``) as a checkbox's
    label: ``/dev/vdc - volume - data - 2 GB``."""
    parts = [drive.name, str(KIND_LABELS[drive.kind])]
    if drive.volume_name:
        parts.append(drive.volume_name)
    parts.append('%d GB' % drive.size_gb)
    return ' - '.join(parts)
