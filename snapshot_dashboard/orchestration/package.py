"""Packaging: the Glance image properties that make a set bootable.

The ``block_device_mapping`` written here is exactly what Nova's
``snapshot_volume_backed`` writes (``block_device.snapshot_from_bdm(...)
.get_image_mapping()``, JSON-encoded by Nova's Glance client), so Nova boots
a set like one of its own snapshots: every volume is recreated from its
snapshot.
"""

import json

from snapshot_dashboard.orchestration import properties

# Every field of Nova's image mapping (BlockDeviceDict._fields without
# connection_info); the ones a volume snapshot does not set are None.
NOVA_IMAGE_MAPPING_FIELDS = (
    'source_type', 'destination_type', 'guest_format', 'device_type',
    'disk_bus', 'boot_index', 'device_name', 'delete_on_termination',
    'snapshot_id', 'volume_id', 'volume_size', 'image_id', 'no_device', 'tag',
    'volume_type', 'encrypted', 'encryption_secret_uuid',
    'encryption_format', 'encryption_options',
)

# Properties of the root volume's image that a snapshot must not inherit:
# what described the old image's bits (Nova's SM_INHERITABLE_KEYS and Cinder's
# own), signatures and keys (Nova's NON_INHERITABLE_IMAGE_PROPERTIES), and the
# mappings this module writes anew.
NOT_INHERITED = frozenset({
    'checksum', 'container_format', 'disk_format', 'image_id', 'image_name',
    'min_disk', 'min_ram', 'size', 'signature_verified', 'os_hash_algo',
    'os_hash_value', 'block_device_mapping', 'mappings', 'bdm_v2',
    'root_device_name', 'cinder_encryption_key_id',
    'cinder_encryption_key_deletion_policy', 'img_signature',
    'img_signature_hash_method', 'img_signature_key_type',
    'img_signature_certificate_uuid',
})
NOT_INHERITED_PREFIXES = ('os_glance', properties.PREFIX)


def volume_snapshot_mapping(device, snapshot_id):
    """Nova's image mapping of a volume snapshot (one BDM v2 dict)."""
    mapping = dict.fromkeys(NOVA_IMAGE_MAPPING_FIELDS)
    mapping.update({
        'source_type': 'snapshot',
        'destination_type': 'volume',
        'snapshot_id': snapshot_id,
        'device_name': device.name,
        'boot_index': device.boot_index,
        'volume_size': device.size_gb,
        'delete_on_termination': bool(device.delete_on_termination),
        'disk_bus': device.disk_bus,
        'device_type': device.device_type,
    })
    return mapping


def inherited_properties(root_image_properties):
    return {key: value for key, value in root_image_properties.items()
            if key not in NOT_INHERITED
            and not key.startswith(NOT_INHERITED_PREFIXES)
            and value is not None}


def image_properties(snapshot_set, plan):
    """All properties of the set's image, as the strings Glance stores."""
    written = inherited_properties(plan.root_image_properties)
    devices = {device.name: device for device in plan.devices}
    mappings = [volume_snapshot_mapping(devices[drive.name],
                                        drive.snapshot_id)
                for drive in snapshot_set.drives if drive.snapshot_id]
    if mappings:
        # Nova writes both only when there is a mapping.
        written['block_device_mapping'] = json.dumps(mappings)
        written['bdm_v2'] = 'True'
    written.update({
        'root_device_name': plan.root_device_name,
        'image_type': 'snapshot',
        'instance_uuid': plan.server_id,
        properties.SET_ID: snapshot_set.id,
        properties.RUN: snapshot_set.run_id,
        properties.SERVER: plan.server_id,
        properties.CONSISTENCY: snapshot_set.consistency,
        properties.REQUESTED: snapshot_set.requested_consistency,
        properties.WINDOW_MS: str(snapshot_set.window_ms),
        properties.DEVICES: json.dumps([drive.to_dict()
                                        for drive in snapshot_set.drives]),
        properties.BOOTABLE: str(plan.bootable),
    })
    if snapshot_set.excluded:
        written[properties.EXCLUDED] = json.dumps(snapshot_set.excluded)
    if snapshot_set.schedule_id:
        written[properties.SCHEDULE] = snapshot_set.schedule_id
    if snapshot_set.undo_of:
        written[properties.UNDO_OF] = snapshot_set.undo_of
    return written
