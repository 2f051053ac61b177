"""Our block_device_mapping, field by field against Nova's own code.

Nova's ``snapshot_volume_backed`` turns each volume BDM into an image
mapping with ``block_device.snapshot_from_bdm(snapshot_id, bdm)
.get_image_mapping()`` and Glance stores the list as JSON; that is the
format Nova reads back when it boots the image.
"""

import json

from nova import block_device
from nova.compute import api as compute_api
from nova.image import glance
import pytest

from snapshot_dashboard.orchestration import package
from snapshot_dashboard.orchestration import plan as plan_module
from snapshot_dashboard.orchestration import sets


def nova_bdm(device):
    """The BDM Nova holds for an attached volume or a boot volume."""
    return {'source_type': 'volume', 'destination_type': 'volume',
            'volume_id': device.volume_id, 'device_name': device.name,
            'boot_index': device.boot_index, 'volume_size': device.size_gb,
            'delete_on_termination': device.delete_on_termination,
            'disk_bus': device.disk_bus, 'device_type': device.device_type,
            'guest_format': None,
            'tag': None, 'volume_type': None}


@pytest.mark.parametrize('device', [
    plan_module.Device(name='/dev/vda', kind=plan_module.ROOT_VOLUME,
                       size_gb=3, volume_id='v-root', boot_index=0,
                       delete_on_termination=True, disk_bus='virtio',
                       device_type='disk'),
    plan_module.Device(name='/dev/vdb', kind=plan_module.VOLUME,
                       size_gb=2, volume_id='v-data'),
])
def test_volume_snapshot_mapping_is_what_nova_writes(device):
    nova = block_device.snapshot_from_bdm(
        'snap-1', nova_bdm(device)).get_image_mapping()
    ours = package.volume_snapshot_mapping(device, 'snap-1')
    assert sorted(ours) == sorted(nova)
    for field in nova:
        assert ours[field] == nova[field], field
    # And it survives the JSON round trip Glance puts it through.
    assert json.loads(json.dumps([ours])) == json.loads(json.dumps([nova]))


def test_nova_reads_the_sets_image_back_into_its_block_devices():
    root = plan_module.Device(name='/dev/vda', kind=plan_module.ROOT_VOLUME,
                              size_gb=3, volume_id='v-root', boot_index=0,
                              delete_on_termination=True)
    data = plan_module.Device(name='/dev/vdb', kind=plan_module.VOLUME,
                              size_gb=2, volume_id='v-data')
    plan = plan_module.Plan(server_id='s1', server_name='web', project_id='p',
                            status='ACTIVE', root_device_name='/dev/vda',
                            image_id=None, devices=(root, data))
    snapshot_set = sets.SnapshotSet(
        id='set-1', name='web set', server_id='s1', run_id='run-1',
        consistency='crash', requested_consistency='auto', window_ms=120,
        drives=[sets.Drive(name=d.name, kind=d.kind, size_gb=d.size_gb,
                           volume_id=d.volume_id, snapshot_id='snap-' + d.name)
                for d in (root, data)])
    properties = package.image_properties(snapshot_set, plan)

    # What Nova does with the image when it boots it: its Glance client
    # decodes the JSON, then compute.api reads the mappings.
    image_meta = glance._convert_from_string({'properties': properties})
    bdms = compute_api.API._get_image_defined_bdms(
        None, None, image_meta, '/dev/vda')

    assert [(b['device_name'], b['source_type'], b['snapshot_id'],
             b['boot_index'], b['volume_size']) for b in bdms] == [
        ('/dev/vda', 'snapshot', 'snap-/dev/vda', 0, 3),
        ('/dev/vdb', 'snapshot', 'snap-/dev/vdb', None, 2)]
    assert block_device.get_root_bdm(bdms)['snapshot_id'] == 'snap-/dev/vda'
