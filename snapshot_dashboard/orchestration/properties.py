"""Every Glance property and Cinder metadata key this project writes.

All are prefixed ``snapshot_set_`` so they never meet Nova's or Glance's
own, and a snapshot of a server booted from a set does not inherit them.
"""

PREFIX = 'snapshot_set_'

# On every volume snapshot and image a run creates (Cinder metadata, Glance
# property): a dead run's leftovers can be found, and a set deletes only
# what it made.
RUN = 'snapshot_set_run'
# On every volume snapshot a run creates, besides RUN.
DEVICE = 'snapshot_set_device'
SERVER = 'snapshot_set_server'

# On the set's own image.
SET_ID = 'snapshot_set_id'  # equal to the image's id: the image is a set
CONSISTENCY = 'snapshot_set_consistency'
REQUESTED = 'snapshot_set_requested_consistency'
WINDOW_MS = 'snapshot_set_window_ms'
DEVICES = 'snapshot_set_devices'  # JSON list of sets.Drive
EXCLUDED = 'snapshot_set_excluded'  # JSON list of {device, reason}
BOOTABLE = 'snapshot_set_bootable'
SCHEDULE = 'snapshot_set_schedule'  # the backup schedule that made it

# On every volume a restore makes, besides RUN: the set and the drive it
# holds again ('<set id> <device>').
RESTORED_FROM = 'snapshot_set_restored_from'
# On a restored volume once its run succeeded: it is the user's from then
# on (a recovery of the run keeps it).
DELIVERED = 'snapshot_set_delivered'

# On a set taken by a restore in place before it changed anything (its
# safety set): the restore's run id. Restoring it undoes the restore.
UNDO_OF = 'snapshot_set_undo_of'
# On a volume a restore in place made only to have Cinder upload a root
# snapshot as an image (deleted right after): never attached, never kept.
TEMPORARY = 'snapshot_set_temporary'
# On a volume a restore in place made: the volume it replaces at its device.
REPLACES = 'snapshot_set_replaces'
# On a volume a restore in place replaced (detached, kept): the run's id.
REPLACED_BY = 'snapshot_set_replaced_by'

# On an image a set holds besides its own (an ephemeral copy): the set's id.
MEMBER_OF = 'snapshot_set_member_of'
# On every volume snapshot and image of a set once the set is packaged:
# the set's id. The reaper never deletes what carries it, even if the set's
# image was deleted behind the set's back (through Glance).
PACKAGED_IN = 'snapshot_set_packaged_in'
