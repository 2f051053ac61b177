"""Planning is pure: plain dicts in, a Plan out, no doubles needed."""

import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import plan as plan_module

PROJECT = 'p1'


def server(image_backed=True, ephemeral=0, status='ACTIVE', task=None,
           project=PROJECT, **extra):
    body = {'id': 's1', 'name': 'web', 'status': status,
            'tenant_id': project,
            'image': {'id': 'img'} if image_backed else '',
            'OS-EXT-STS:task_state': task,
            'flavor': {'disk': 1 if image_backed else 0,
                       'ephemeral': ephemeral, 'swap': 0}}
    body.update(extra)
    return body


def attachment(device, volume_id, delete=False):
    return {'device': device, 'volumeId': volume_id,
            'delete_on_termination': delete}


VOLUMES = {
    'root': {'id': 'root', 'name': 'web-root', 'size': 3,
             'volume_image_metadata': {'hw_qemu_guest_agent': 'yes'}},
    'data': {'id': 'data', 'name': 'web-data', 'size': 2},
    'logs': {'id': 'logs', 'name': 'web-logs', 'size': 1},
}


def plan_of(body, attachments=(), selection=None, **kwargs):
    return plan_module.build_plan(body, list(attachments), VOLUMES, PROJECT,
                                  selection=selection, **kwargs)


def summary(plan):
    return [(d.name, d.kind, d.size_gb, d.volume_id, d.boot_index)
            for d in plan.devices]


def test_image_backed_server_has_local_root_then_volumes():
    plan = plan_of(server(), [attachment('/dev/vdc', 'logs'),
                              attachment('/dev/vdb', 'data')])
    assert summary(plan) == [
        ('/dev/vda', plan_module.ROOT_IMAGE, 1, None, 0),
        ('/dev/vdb', plan_module.VOLUME, 2, 'data', None),
        ('/dev/vdc', plan_module.VOLUME, 1, 'logs', None),
    ]
    assert plan.root_device_name == '/dev/vda'
    assert plan.image_id == 'img'
    assert plan.bootable


def test_boot_from_volume_root_is_the_volume_at_the_root_name():
    plan = plan_of(server(image_backed=False),
                   [attachment('/dev/vdb', 'data'),
                    attachment('/dev/vda', 'root', delete=True)])
    assert summary(plan) == [
        ('/dev/vda', plan_module.ROOT_VOLUME, 3, 'root', 0),
        ('/dev/vdb', plan_module.VOLUME, 2, 'data', None),
    ]
    assert plan.devices[0].delete_on_termination is True
    assert plan.root_image_properties == {'hw_qemu_guest_agent': 'yes'}
    # What Nova's libvirt driver records for a boot volume, and not for a
    # volume attached later.
    assert [(d.disk_bus, d.device_type) for d in plan.devices] == [
        ('virtio', 'disk'), (None, None)]


def test_boot_volume_bus_follows_the_images_hw_disk_bus():
    volumes = dict(VOLUMES, root=dict(VOLUMES['root'], volume_image_metadata={
        'hw_disk_bus': 'scsi'}))
    plan = plan_module.build_plan(server(image_backed=False),
                                  [attachment('/dev/vda', 'root')], volumes,
                                  PROJECT)
    assert plan.devices[0].disk_bus == 'scsi'


def test_ephemeral_disk_takes_the_first_free_name_after_the_root():
    plan = plan_of(server(ephemeral=5), [attachment('/dev/vdc', 'data')])
    assert summary(plan) == [
        ('/dev/vda', plan_module.ROOT_IMAGE, 1, None, 0),
        ('/dev/vdb', plan_module.EPHEMERAL, 5, None, None),
        ('/dev/vdc', plan_module.VOLUME, 2, 'data', None),
    ]


def test_server_without_volumes_has_only_its_root():
    plan = plan_of(server())
    assert summary(plan) == [('/dev/vda', plan_module.ROOT_IMAGE, 1, None, 0)]
    assert plan.volume_devices == []


def test_root_device_name_shown_to_admins_is_used():
    body = server(image_backed=False,
                  **{'OS-EXT-SRV-ATTR:root_device_name': '/dev/sda'})
    plan = plan_of(body, [attachment('/dev/sda', 'root'),
                          attachment('/dev/sdb', 'data')])
    assert [d.kind for d in plan.devices] == [plan_module.ROOT_VOLUME,
                                              plan_module.VOLUME]
    assert plan.root_device_name == '/dev/sda'


def test_bus_prefix_comes_from_the_attachments():
    plan = plan_of(server(), [attachment('/dev/sdb', 'data')])
    assert plan.root_device_name == '/dev/sda'


@pytest.mark.parametrize('selection', [['vdb'], ['/dev/vdb'], [' vdb ']])
def test_selection_accepts_short_and_full_device_names(selection):
    plan = plan_of(server(), [attachment('/dev/vdb', 'data'),
                              attachment('/dev/vdc', 'logs')],
                   selection=selection)
    assert [d.name for d in plan.devices] == ['/dev/vdb']
    assert not plan.bootable


def test_unknown_device_names_are_refused_with_the_known_ones():
    with pytest.raises(errors.UnknownDevices) as raised:
        plan_of(server(), [attachment('/dev/vdb', 'data')],
                selection=['vdb', 'vdz', 'sdq'])
    assert raised.value.unknown == ['/dev/sdq', '/dev/vdz']
    assert raised.value.known == ['/dev/vda', '/dev/vdb']
    assert '/dev/vdz' in str(raised.value)


def test_empty_selection_is_refused():
    with pytest.raises(errors.NothingSelected):
        plan_of(server(), selection=[])


@pytest.mark.parametrize('status', ['ERROR', 'SHELVED_OFFLOADED', 'SHELVED',
                                    'BUILD', 'RESCUE', 'RESIZE'])
def test_servers_in_states_nova_cannot_snapshot_are_refused(status):
    with pytest.raises(errors.ServerNotSnapshottable) as raised:
        plan_of(server(status=status))
    assert status in str(raised.value)


@pytest.mark.parametrize('status', ['ACTIVE', 'SHUTOFF', 'PAUSED',
                                    'SUSPENDED'])
def test_servers_in_states_nova_can_snapshot_are_planned(status):
    assert plan_of(server(status=status)).status == status


def test_a_busy_server_is_refused():
    with pytest.raises(errors.ServerNotSnapshottable) as raised:
        plan_of(server(task='image_uploading'))
    assert 'image_uploading' in str(raised.value)


def test_another_projects_server_is_refused():
    with pytest.raises(errors.ServerNotFound):
        plan_of(server(project='someone-else'))


def test_a_drive_nobody_can_capture_is_refused_when_named():
    def only_volumes(device):
        return None if device.is_volume else 'needs the agent'

    with pytest.raises(errors.DeviceNotCapturable) as raised:
        plan_of(server(ephemeral=1), [attachment('/dev/vdc', 'data')],
                selection=['vdb', 'vdc'], cannot_capture=only_volumes)
    assert raised.value.reasons == {'/dev/vdb': 'needs the agent'}


def test_all_drives_leaves_out_the_uncapturable_with_the_reason():
    def no_ephemeral(device):
        return 'needs the agent' if device.kind == 'ephemeral' else None

    plan = plan_of(server(ephemeral=1), [attachment('/dev/vdc', 'data')],
                   cannot_capture=no_ephemeral)
    assert [d.name for d in plan.devices] == ['/dev/vda', '/dev/vdc']
    assert [(d.name, why) for d, why in plan.excluded] == [
        ('/dev/vdb', 'needs the agent')]
