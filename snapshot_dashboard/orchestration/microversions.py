"""API microversions, named for the feature that needs them."""

NOVA_FEATURES = {
    # createImage answers with the image id in its body.
    'create_image_returns_id': '2.45',
    # Server shows embed the flavor (disk, ephemeral, swap).
    'server_embeds_flavor': '2.47',
    # Volume attachments show delete_on_termination.
    'attachment_delete_on_termination': '2.79',
}

CINDER_FEATURES = {
    # Snapshots of in-use volumes without a separate flag; force=True is
    # still accepted, so one call serves both sides of 3.66.
    'snapshot_in_use': '3.66',
}


def _highest(features):
    return max(features.values(),
               key=lambda version: tuple(int(p) for p in version.split('.')))


NOVA = _highest(NOVA_FEATURES)
# Asked for its one call only (a cloud without it still serves the rest):
# the rebuild of a volume-backed server re-images its root volume.
NOVA_REIMAGE_BOOT_VOLUME = '2.93'
CINDER = _highest(CINDER_FEATURES)
GLANCE = '2'
