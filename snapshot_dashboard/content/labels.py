"""The words the panels show for the core's values: consistency levels and
kinds of drive, shared by the snapshot workflow and the schedule form."""

from django.utils.translation import gettext_lazy as _

from snapshot_dashboard.orchestration import plan as planning
from snapshot_dashboard.orchestration import window as windows

LEVEL_LABELS = {
    windows.AUTO: _('Automatic'), windows.APPLICATION: _('Application'),
    windows.CRASH: _('Crash'), windows.NONE: _('None'),
}
KIND_LABELS = {
    planning.ROOT_IMAGE: _('root image'),
    planning.ROOT_VOLUME: _('root volume'),
    planning.EPHEMERAL: _('ephemeral'),
    planning.VOLUME: _('volume'),
}


def consistency_choices():
    """The consistency field's choices: each level and what it gives."""
    return [(level, '%s: %s' % (LEVEL_LABELS[level],
                                windows.LEVEL_HELP[level]))
            for level in windows.LEVELS]


def drive_label(drive):
    """A drive of a pre-flight (``preflight.DriveChoice``) as a checkbox's
    label: ``/dev/vdc - volume - data - 2 GB``."""
    parts = [drive.name, str(KIND_LABELS[drive.kind])]
    if drive.volume_name:
        parts.append(drive.volume_name)
    parts.append('%d GB' % drive.size_gb)
    return ' - '.join(parts)
