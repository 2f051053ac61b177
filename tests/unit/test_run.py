"""Running snapshot sets against in-memory Nova, Cinder and Glance."""

import json
import threading

from keystoneauth1 import exceptions as ks_exceptions
import pytest

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import events
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module
from tests.unit import fakes

VOLUMES = [('/dev/vdb', 2), ('/dev/vdc', 1)]


@pytest.fixture
def cloud():
    return fakes.FakeCloud()


def take(cloud, server_id, **kwargs):
    seen = kwargs.pop('seen', [])
    return run.create_snapshot_set(
        cloud, server_id, clock=fakes.FakeClock(cloud),
        progress=seen.append, **kwargs)


def resources(cloud):
    """Ids of every snapshot and image the cloud holds."""
    return set(cloud.snapshots), set(cloud.images)


def mappings(cloud, set_id):
    return json.loads(cloud.images[set_id]['block_device_mapping'])


def test_image_backed_server_crash_set_shares_the_pause(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    paused_while_creating = []
    cloud.on_tick.append(lambda: paused_while_creating.append(
        cloud.server_status(server)) if any(
            s['status'] == 'creating' for s in cloud.snapshots.values())
        else None)

    snapshot_set = take(cloud, server, consistency='crash', wait=True)

    assert snapshot_set.consistency == 'crash'
    assert set(paused_while_creating) == {'PAUSED'}
    assert cloud.server_status(server) == 'ACTIVE'
    assert [c for c, _ in cloud.pause_calls] == ['pause', 'unpause']
    image = cloud.images[snapshot_set.id]
    assert image['status'] == 'active'
    assert image['instance_uuid'] == server
    assert image['image_type'] == 'snapshot'
    assert image['root_device_name'] == '/dev/vda'
    assert image['bdm_v2'] == 'True'
    assert image['snapshot_set_id'] == snapshot_set.id
    assert [(m['device_name'], m['boot_index'], m['volume_size'])
            for m in mappings(cloud, snapshot_set.id)] == [
        ('/dev/vdb', None, 2), ('/dev/vdc', None, 1)]
    drives = {d.name: d for d in snapshot_set.drives}
    assert drives['/dev/vda'].image_id == snapshot_set.id
    assert all(d.shared_instant for d in drives.values())
    assert len(cloud.snapshots) == 2
    assert snapshot_set.window_ms > 0
    assert snapshot_set.status == sets.AVAILABLE


def test_volume_backed_server_set_is_an_image_without_data(cloud):
    server = cloud.add_server(image_backed=False, volumes=[('/dev/vdb', 2)])
    snapshot_set = take(cloud, server)
    image = cloud.images[snapshot_set.id]
    assert image['size'] == 0
    assert image['status'] == 'active'
    assert (image['disk_format'], image['container_format']) == ('raw',
                                                                 'bare')
    assert [(m['device_name'], m['boot_index'], m['delete_on_termination'])
            for m in mappings(cloud, snapshot_set.id)] == [
        ('/dev/vda', 0, True), ('/dev/vdb', None, False)]
    # The root volume's image properties go with the set, its bits' do not.
    assert image['hw_qemu_guest_agent'] == 'yes'
    assert 'checksum' not in image and image.get('image_id') is None
    assert snapshot_set.consistency == 'crash'  # auto without an agent
    assert snapshot_set.bootable


def test_subset_captures_exactly_the_chosen_drives(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    snapshot_set = take(cloud, server, devices=['vdc'])
    assert [d.name for d in snapshot_set.drives] == ['/dev/vdc']
    assert [m['device_name'] for m in mappings(cloud, snapshot_set.id)] == [
        '/dev/vdc']
    assert len(cloud.snapshots) == 1
    assert not snapshot_set.bootable
    # No createImage: the set's image is the only one.
    assert list(cloud.images) == [snapshot_set.id]


def test_server_without_volumes_gets_a_root_only_set(cloud):
    server = cloud.add_server()
    snapshot_set = take(cloud, server, wait=True)
    assert 'block_device_mapping' not in cloud.images[snapshot_set.id]
    assert 'bdm_v2' not in cloud.images[snapshot_set.id]
    assert cloud.snapshots == {}


def test_ephemeral_disk_is_left_out_of_all_drives_and_said_why(cloud):
    server = cloud.add_server(ephemeral_gb=1, volumes=[('/dev/vdc', 1)])
    snapshot_set = take(cloud, server)
    assert [d.name for d in snapshot_set.drives] == ['/dev/vda', '/dev/vdc']
    assert snapshot_set.excluded[0]['device'] == '/dev/vdb'
    assert 'agent' in snapshot_set.excluded[0]['reason']
    image = cloud.images[snapshot_set.id]
    assert json.loads(image['snapshot_set_excluded'])[0]['device'] == \
        '/dev/vdb'


def test_consistency_none_never_pauses(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    snapshot_set = take(cloud, server, consistency='none')
    assert cloud.pause_calls == []
    assert snapshot_set.consistency == 'none'
    assert not any(d.shared_instant for d in snapshot_set.drives)


def test_shut_off_server_is_not_paused_and_is_crash_consistent(cloud):
    server = cloud.add_server(volumes=VOLUMES, status='SHUTOFF')
    snapshot_set = take(cloud, server, consistency='crash')
    assert cloud.pause_calls == []
    assert snapshot_set.consistency == 'crash'
    assert cloud.server_status(server) == 'SHUTOFF'


def test_server_paused_by_its_user_stays_paused(cloud):
    server = cloud.add_server(volumes=VOLUMES, status='PAUSED')
    take(cloud, server)
    assert cloud.pause_calls == []
    assert cloud.server_status(server) == 'PAUSED'


def test_application_consistency_without_agent_is_refused_untouched(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    with pytest.raises(errors.ConsistencyUnavailable):
        take(cloud, server, consistency='application')
    assert resources(cloud) == (set(), set())
    assert cloud.pause_calls == []


@pytest.mark.parametrize('bad', [
    {'devices': ['vdz']},
    {'devices': ['vdb', '/dev/sdq']},
    {'consistency': 'perfect'},
])
def test_bad_input_changes_nothing(cloud, bad):
    server = cloud.add_server(volumes=VOLUMES)
    with pytest.raises(errors.SnapshotSetError):
        take(cloud, server, **bad)
    assert resources(cloud) == (set(), set())
    assert cloud.pause_calls == []


def test_another_projects_server_is_refused(cloud):
    server = cloud.add_server(volumes=VOLUMES,
                              project_id=fakes.OTHER_PROJECT)
    with pytest.raises(errors.ServerNotFound):
        take(cloud, server)
    assert resources(cloud) == (set(), set())


def test_another_projects_server_is_refused_even_to_an_admin(cloud):
    server = cloud.add_server(volumes=VOLUMES,
                              project_id=fakes.OTHER_PROJECT)
    cloud.admin = True
    asked = []

    class Locator:
        def for_server(self, clients, server_id):
            asked.append(server_id)

    with pytest.raises(errors.ServerNotFound):
        take(cloud, server, agent_locator=Locator())
    assert resources(cloud) == (set(), set())
    # Refused before its agent was looked for (nor asked anything).
    assert asked == []


@pytest.mark.parametrize('status', ['ERROR', 'SHELVED_OFFLOADED'])
def test_server_nova_cannot_snapshot_is_refused(cloud, status):
    server = cloud.add_server(volumes=VOLUMES, status=status)
    with pytest.raises(errors.ServerNotSnapshottable):
        take(cloud, server)
    assert resources(cloud) == (set(), set())


def test_quota_too_small_is_refused_before_anything_is_made(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    cloud.limits.update(maxTotalSnapshots=10, totalSnapshotsUsed=9)
    with pytest.raises(errors.QuotaExceeded) as raised:
        take(cloud, server)
    assert 'volume snapshots: 2 needed, 9 of 10 in use' in str(raised.value)
    assert resources(cloud) == (set(), set())
    assert cloud.pause_calls == []


def test_gigabytes_and_image_quota_are_checked(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    cloud.limits.update(maxTotalVolumeGigabytes=5, totalGigabytesUsed=3)
    cloud.image_limit = 0
    with pytest.raises(errors.QuotaExceeded) as raised:
        take(cloud, server)
    assert [c.resource for c in raised.value.checks] == [
        'volume gigabytes', 'images']


def test_volume_detached_mid_run_rolls_everything_back(cloud):
    server = cloud.add_server(volumes=VOLUMES)

    def detach_once_snapshotting():
        if cloud.snapshots and cloud.attachments[server][-1:]:
            cloud.detach(server, '/dev/vdc')
            cloud.on_tick.clear()

    cloud.on_tick.append(detach_once_snapshotting)
    with pytest.raises(errors.DevicesChanged) as raised:
        take(cloud, server, consistency='crash')
    assert raised.value.detached == ['/dev/vdc']
    assert resources(cloud) == (set(), set())
    assert cloud.server_status(server) == 'ACTIVE'


def test_window_budget_exceeded_releases_the_guest_and_keeps_nothing(cloud):
    cloud.snapshot_ticks = 50  # slow storage: 5 s at the 0.1 s poll
    server = cloud.add_server(volumes=VOLUMES)
    with pytest.raises(errors.WindowTimeout) as raised:
        take(cloud, server, budget_s=2, consistency='crash')
    assert raised.value.waiting_for == ['/dev/vdb', '/dev/vdc']
    assert cloud.server_status(server) == 'ACTIVE'
    # Rollback waited for Cinder to let the snapshots go, then deleted them.
    assert resources(cloud) == (set(), set())
    assert raised.value.rollback_failures == []


@pytest.mark.parametrize('point', [
    p for p in fakes.FAILURE_POINTS
    if p != 'nova.unpause' and not p.startswith('agent.')])
@pytest.mark.parametrize('image_backed', [True, False])
def test_failure_at_any_step_leaves_nothing_and_releases_the_guest(
        cloud, point, image_backed):
    server = cloud.add_server(image_backed=image_backed, volumes=VOLUMES)
    cloud.fail_at.add(point)
    seen = []
    try:
        take(cloud, server, consistency='crash', wait=True, seen=seen)
    except Exception as e:
        error = e
    else:
        # Some points are not on this server's path (no createImage for a
        # volume-backed server, no Glance create for Nova's image).
        assert point in {
            True: {'glance.create', 'glance.upload'},
            False: {'nova.create_image', 'nova.snapshot_task',
                    'glance.update'},
        }[image_backed]
        return
    for _ in range(5):
        cloud.tick()
    assert resources(cloud) == (set(), set()), point
    assert cloud.server_status(server) == 'ACTIVE'
    assert getattr(error, 'rollback_failures', None) == []
    steps = [(e.step, e.state) for e in seen]
    if ('open-window', 'started') in steps:
        assert steps.index(('close-window', 'started')) < steps.index(
            ('rollback', 'started'))


def test_unpause_failure_is_reported_and_nothing_is_kept(cloud):
    server = cloud.add_server(image_backed=False, volumes=VOLUMES)
    cloud.fail_at.add('nova.unpause')
    with pytest.raises(errors.WindowCloseFailed) as raised:
        take(cloud, server, consistency='crash')
    assert 'may still be paused' in str(raised.value)
    assert resources(cloud) == (set(), set())


def test_progress_reports_every_step_in_order(cloud):
    server = cloud.add_server(volumes=[('/dev/vdb', 1)])
    seen = []
    take(cloud, server, consistency='crash', wait=True, seen=seen)
    steps = [(e.step, e.state, e.device) for e in seen]
    assert steps[:6] == [
        ('plan', 'started', None), ('plan', 'done', None),
        ('preflight', 'started', None), ('preflight', 'done', None),
        ('open-window', 'started', None), ('open-window', 'done', None)]
    assert ('capture', 'done', '/dev/vda') in steps
    assert ('capture', 'done', '/dev/vdb') in steps
    assert steps[-4:] == [
        ('package', 'started', None), ('package', 'done', None),
        ('upload', 'started', None), ('upload', 'done', None)]
    assert steps.index(('close-window', 'done', None)) < steps.index(
        ('package', 'started', None))


def test_list_show_and_delete_a_set(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    other = cloud.add_server(name='db', image_backed=False)
    first = take(cloud, server, wait=True)
    second = take(cloud, other)
    unrelated = cloud.cinder.volume_snapshots.create(
        cloud.attachments[server][0]['volumeId'], force=True)

    listed = sets.list_sets(cloud)
    assert [s.id for s in listed] == [second.id, first.id]
    assert {s.status for s in listed} == {sets.AVAILABLE}
    assert [s.id for s in sets.list_sets(cloud, server_id=server)] == [
        first.id]
    shown = sets.get_set(cloud, first.id)
    assert [d.name for d in shown.drives] == ['/dev/vda', '/dev/vdb',
                                              '/dev/vdc']

    sets.delete_set(cloud, first.id)
    assert first.id not in cloud.images
    assert set(cloud.snapshots) == {unrelated.id} | set(
        second.snapshot_ids)
    assert second.id in cloud.images
    with pytest.raises(errors.SetNotFound):
        sets.get_set(cloud, first.id)


def test_an_image_that_inherited_set_properties_is_not_a_set(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    snapshot_set = take(cloud, server, wait=True)
    inherited = {k: v for k, v in cloud.images[snapshot_set.id].items()
                 if k.startswith('snapshot_set_')}
    copy = cloud.glance.images.create(**inherited)
    assert [s.id for s in sets.list_sets(cloud)] == [snapshot_set.id]
    with pytest.raises(errors.SetNotFound):
        sets.get_set(cloud, copy['id'])


def test_set_with_a_missing_snapshot_shows_error(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    snapshot_set = take(cloud, server, wait=True)
    del cloud.snapshots[snapshot_set.snapshot_ids[0]]
    assert sets.get_set(cloud, snapshot_set.id).status == sets.ERROR


def test_delete_keeps_the_image_when_a_snapshot_cannot_go(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    snapshot_set = take(cloud, server, wait=True)
    cloud.fail_at.add('cinder.snapshot_delete')
    with pytest.raises(errors.SetDeleteFailed):
        sets.delete_set(cloud, snapshot_set.id)
    assert snapshot_set.id in cloud.images


def test_an_upload_glance_never_finishes_fails_and_keeps_nothing(cloud):
    server = cloud.add_server(volumes=VOLUMES)

    def glance_stalls():
        for image in cloud.images.values():
            if image['status'] == 'active' and image.get('_by_nova_stall'):
                image['status'] = 'saving'

    def mark_nova_images():
        for image in cloud.images.values():
            image['_by_nova_stall'] = True

    cloud.on_tick.extend([mark_nova_images, glance_stalls])
    with pytest.raises(errors.CaptureFailed) as raised:
        take(cloud, server, wait=True)
    assert 'Glance still shows it saving' in str(raised.value)
    cloud.on_tick.clear()
    for _ in range(5):
        cloud.tick()
    assert resources(cloud) == (set(), set())
    assert cloud.server_status(server) == 'ACTIVE'


def test_progress_carries_typed_drives_window_and_resources(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    seen = []
    snapshot_set = take(cloud, server, consistency='crash', wait=True,
                        seen=seen)
    done = {e.step: e for e in seen if e.state == events.DONE}
    assert done[events.PLAN].drives == ('/dev/vda', '/dev/vdb', '/dev/vdc')
    assert done[events.OPEN_WINDOW].window == {'kind': 'NovaPauseWindow'}
    assert done[events.CLOSE_WINDOW].window_ms == snapshot_set.window_ms
    assert done[events.PACKAGE].set_id == snapshot_set.id
    created = [e.resource for e in seen if e.step == events.RESOURCE]
    assert sorted((r.kind, r.id) for r in created) == sorted(
        [(events.VOLUME_SNAPSHOT, d.snapshot_id)
         for d in snapshot_set.drives if d.snapshot_id]
        + [(events.IMAGE, d.image_id)
           for d in snapshot_set.drives if d.image_id])


def test_a_failed_run_reports_what_it_created_and_removed(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    cloud.fail_at.add('glance.update')
    seen = []
    with pytest.raises(Exception):  # noqa: B017 - any failure, same end
        take(cloud, server, consistency='crash', wait=True, seen=seen)
    created = [e.resource for e in seen if e.step == events.RESOURCE]
    assert {r.kind for r in created} == {events.VOLUME_SNAPSHOT,
                                         events.IMAGE}
    assert [(e.step, e.state) for e in seen][-2:] == [
        (events.ROLLBACK, events.STARTED),
        (events.ROLLBACK, events.DONE)]
    assert resources(cloud) == (set(), set())


def test_a_pause_nova_refused_is_not_undone_by_this_run(cloud):
    # Another run paused the server between this run's plan and its pause.
    server = cloud.add_server(volumes=VOLUMES)
    window = window_module.NovaPauseWindow(cloud.nova, server,
                                           clock=fakes.FakeClock(cloud))
    cloud.servers[server]['status'] = 'PAUSED'
    with pytest.raises(errors.ConsistencyUnavailable) as raised:
        window.open()
    assert 'cannot be paused now' in str(raised.value)
    window.close()
    assert cloud.server_status(server) == 'PAUSED'
    assert [c for c, _ in cloud.pause_calls] == ['pause']


@pytest.mark.parametrize('point', ['cinder.snapshot_create_answer',
                                   'nova.create_image_answer'])
def test_a_create_whose_answer_was_lost_is_undone_too(cloud, point):
    # Cinder or Nova made the snapshot, the answer never came: the undo
    # registered before the call finds it by the run's tags.
    server = cloud.add_server(volumes=VOLUMES)
    cloud.fail_at.add(point)
    with pytest.raises(Exception):  # noqa: B017 - any failure, same end
        take(cloud, server, consistency='crash')
    for _ in range(5):
        cloud.tick()
    assert resources(cloud) == (set(), set())
    assert cloud.server_status(server) == 'ACTIVE'


def test_the_window_is_recorded_before_it_is_opened(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    seen = []
    take(cloud, server, consistency='crash', seen=seen)
    intent = next(e for e in seen if e.step == events.OPEN_WINDOW)
    assert (intent.state, intent.window) == (
        events.STARTED, {'kind': 'NovaPauseWindow'})


def test_a_window_whose_intent_cannot_be_recorded_is_never_opened(cloud):
    server = cloud.add_server(volumes=VOLUMES)

    def progress(event):
        if event.step == events.OPEN_WINDOW:
            raise RuntimeError('database gone')
    with pytest.raises(RuntimeError):
        run.create_snapshot_set(cloud, server, consistency='crash',
                                clock=fakes.FakeClock(cloud),
                                progress=progress)
    assert cloud.pause_calls == []
    assert resources(cloud) == (set(), set())


def test_a_superseded_run_stops_and_leaves_everything_to_the_new_owner(
        cloud):
    # Another process took the run over while its snapshots were being
    # made: this one undoes nothing (the new owner keeps or removes what
    # was made) and does not unpause (the new owner's recovery does, and
    # the pause might be the new owner's by now).
    server = cloud.add_server(volumes=VOLUMES)

    def progress(event):
        if event.step == events.CAPTURE and event.state == events.DONE:
            raise errors.Superseded('run taken over')
    with pytest.raises(errors.Superseded):
        run.create_snapshot_set(cloud, server, consistency='crash',
                                clock=fakes.FakeClock(cloud),
                                progress=progress)
    assert len(cloud.snapshots) == 2
    assert [c for c, _ in cloud.pause_calls] == ['pause']
    assert cloud.server_status(server) == 'PAUSED'


def test_an_undo_that_fails_while_a_service_restarts_is_tried_again(cloud):
    server = cloud.add_server(volumes=VOLUMES)
    cloud.fail_at.add('glance.update')
    # Cinder is unreachable for both deletes twice, then answers again.
    deletes = []

    def check(point, exception):
        if point == 'cinder.snapshot_delete':
            deletes.append(point)
            if len(deletes) <= 4:
                raise ks_exceptions.ConnectFailure('connection refused')
        elif point in cloud.fail_at:
            raise exception
    cloud.check = check
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any failure
        take(cloud, server, consistency='crash', wait=True)
    assert raised.value.rollback_failures == []
    assert len(deletes) == 6
    for _ in range(5):
        cloud.tick()
    assert resources(cloud) == (set(), set())


def test_an_undo_refused_is_reported_without_retrying(cloud):
    # A refusal (not an unreachable service) will not change by waiting.
    server = cloud.add_server(volumes=VOLUMES)
    cloud.fail_at.update({'glance.update', 'cinder.snapshot_delete'})
    sleeps = []
    clock = fakes.FakeClock(cloud)
    real_sleep = clock.sleep
    clock.sleep = lambda s: sleeps.append(s) or real_sleep(s)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any failure
        run.create_snapshot_set(cloud, server, consistency='crash',
                                wait=True, clock=clock)
    assert len(raised.value.rollback_failures) == 2
    assert all('busy' in f for f in raised.value.rollback_failures)
    assert not set(sleeps) & set(run.Rollback.RETRY_S[1:])


def _volumes(n):
    return [('/dev/vd%s' % chr(ord('b') + i), 1) for i in range(n)]


def test_every_capture_begins_at_once_at_any_number_of_drives(cloud):
    # Sixteen snapshot creates meet at a barrier: with fewer threads than
    # drives, some would wait for others and the barrier would break.
    server = cloud.add_server(image_backed=False, volumes=_volumes(15))
    barrier = threading.Barrier(16, timeout=10)
    create = cloud.cinder.volume_snapshots.create

    def create_together(*args, **kwargs):
        barrier.wait()
        return create(*args, **kwargs)
    cloud.cinder.volume_snapshots.create = create_together

    snapshot_set = take(cloud, server)

    assert len(snapshot_set.drives) == 16
    assert len(cloud.snapshots) == 16


@pytest.mark.parametrize('drives', [2, 16])
def test_a_poll_round_costs_one_request_at_any_number_of_drives(cloud,
                                                                 drives):
    # Inside the window the snapshots are polled with one listing of the
    # run's per round, never one request per snapshot.
    cloud.snapshot_ticks = 3
    server = cloud.add_server(image_backed=False,
                              volumes=_volumes(drives - 1))
    in_window = {}

    def progress(event):
        if event.step == events.OPEN_WINDOW and event.state == events.DONE:
            in_window['from'] = dict(cloud.requests)
        if (event.step == events.CLOSE_WINDOW
                and event.state == events.STARTED):
            in_window['to'] = dict(cloud.requests)
    take(cloud, server, consistency='crash', seen=_Seen(progress))

    def spent(call):
        return in_window['to'].get(call, 0) - in_window['from'].get(call, 0)
    assert spent('cinder.snapshot_get') == 0
    # One listing per poll round: the snapshots leave ``creating`` after
    # three ticks (sleeps), so at the fourth round.
    assert spent('cinder.snapshot_list') == 4


class _Seen(list):
    """A progress list that also hands each event to ``on_event``."""

    def __init__(self, on_event):
        super().__init__()
        self.on_event = on_event

    def append(self, event):
        self.on_event(event)
        super().append(event)


def test_a_snapshot_the_listing_misses_is_asked_for_alone(cloud):
    server = cloud.add_server(image_backed=False, volumes=_volumes(2))
    listed = cloud.cinder.volume_snapshots.list
    cloud.cinder.volume_snapshots.list = lambda **kwargs: listed(**kwargs)[1:]

    snapshot_set = take(cloud, server)

    assert len(snapshot_set.drives) == 3
    assert cloud.requests['cinder.snapshot_get'] > 0


def test_a_snapshot_that_fails_is_seen_in_the_listing(cloud):
    server = cloud.add_server(image_backed=False, volumes=_volumes(3))
    cloud.fail_at.add('cinder.snapshot_status')
    with pytest.raises(errors.CaptureFailed, match='is error'):
        take(cloud, server)
    assert cloud.snapshots == {}


def _pages(cloud, limit, **kwargs):
    """Every page of sets, and what each page cost in requests."""
    pages, costs, marker = [], [], None
    while True:
        before = dict(cloud.requests)
        page, marker = sets.page_sets(cloud, limit, marker=marker, **kwargs)
        costs.append({k: v - before.get(k, 0)
                      for k, v in cloud.requests.items()
                      if v != before.get(k, 0)})
        pages.append(page)
        if marker is None:
            return pages, costs


def test_sets_are_paged_newest_first_with_markers(cloud):
    server = cloud.add_server(image_backed=False)
    made = []
    for n in range(23):
        made.append(take(cloud, server).id)
        if n == 11:  # Nova's own snapshot between them: not a set
            cloud.glance.images.create(name='nova', image_type='snapshot')
    cloud.snapshots[sets.get_set(cloud, made[0]).snapshot_ids[0]][
        'status'] = 'error'

    pages, costs = _pages(cloud, 10)

    assert [len(p) for p in pages] == [10, 10, 3]
    assert [s.id for p in pages for s in p] == made[::-1]
    assert [s.status for p in pages for s in p] == [sets.AVAILABLE] * 22 + [
        sets.ERROR]
    # A page: one Glance listing, one Cinder read per snapshot on it.
    assert costs[0] == {'glance.image_list': 1, 'cinder.snapshot_get': 10}


def test_a_page_costs_the_same_at_any_number_of_sets(cloud):
    server = cloud.add_server(image_backed=False, volumes=[('/dev/vdb', 1)])
    first_page = []
    for total in (12, 60):
        while len(sets.list_sets(cloud)) < total:
            take(cloud, server)
        pages, costs = _pages(cloud, 10)
        assert sum(len(p) for p in pages) == total
        first_page.append(costs[0])
    assert first_page[0] == first_page[1] == {'glance.image_list': 1,
                                              'cinder.snapshot_get': 20}


def test_a_page_reads_an_ephemeral_copy_not_on_it(cloud):
    # The agent makes a set's ephemeral copy before the set's own image,
    # so the copy sorts after the set, perhaps onto the next page.
    server = cloud.add_server(ephemeral_gb=1)
    agent = fakes.FakeAgent(cloud)
    made = [run.create_snapshot_set(
        cloud, server, clock=fakes.FakeClock(cloud), wait=True,
        agent_locator=fakes.FakeAgents(agent)).id for _ in range(2)]

    pages, _ = _pages(cloud, 1)

    assert [s.id for p in pages for s in p] == made[::-1]
    assert all(p[0].status == sets.AVAILABLE for p in pages)


def test_a_page_marker_that_is_no_set_is_refused_before_glance(cloud):
    for marker in ('x&owner=another-project', 'images',
                   'urn:uuid:11111111-1111-1111-1111-111111111111'):
        with pytest.raises(errors.SetNotFound):
            sets.page_sets(cloud, 10, marker=marker)
    assert cloud.requests['glance.image_list'] == 0


def test_a_page_after_a_deleted_set_says_so(cloud):
    server = cloud.add_server(image_backed=False)
    gone = take(cloud, server).id
    sets.delete_set(cloud, gone)
    with pytest.raises(errors.SetNotFound):
        sets.page_sets(cloud, 10, marker=gone)


@pytest.mark.parametrize('asked, served', [(0, 1), (10 ** 6, 100)])
def test_a_page_size_is_kept_within_bounds(cloud, asked, served):
    server = cloud.add_server(image_backed=False)
    for _ in range(3):
        take(cloud, server)
    page, marker = sets.page_sets(cloud, asked)
    assert len(page) == min(served, 3)
    assert (marker is None) == (served >= 3)


def test_a_crafted_set_image_never_breaks_a_page_or_fans_out(cloud):
    server = cloud.add_server(image_backed=False)
    real = take(cloud, server).id
    broken = cloud.glance.images.create(
        name='broken', image_type='snapshot',
        **{properties.SERVER: server})
    cloud.images[broken['id']].update(
        {properties.SET_ID: broken['id'], properties.DEVICES: '{not json'})
    claims = cloud.glance.images.create(name='claims', image_type='snapshot')
    cloud.images[claims['id']].update({
        properties.SET_ID: claims['id'],
        properties.DEVICES: json.dumps([sets.Drive(
            name='/dev/vd%d' % n, kind='volume', size_gb=1,
            snapshot_id='11111111-1111-1111-1111-%012d' % n).to_dict()
            for n in range(1000)])})

    before = dict(cloud.requests)
    page, _ = sets.page_sets(cloud, 10)

    assert [s.id for s in page] == [claims['id'], real]
    assert page[0].status == sets.ERROR
    # Only the real set's one snapshot was asked for.
    assert cloud.requests['cinder.snapshot_get'] - before.get(
        'cinder.snapshot_get', 0) == 1
