"""A real browser on `make demo`'s Horizon and mini-cloud, as the demo user:
the Instances row action, one drive unticked, the set available in the
Snapshot Sets panel, the set checked through the OpenStack APIs, then
launched and deleted from the panel; a set restored in place, a subset of
its drives ticked, from the panel.

Headless Chromium and chromedriver from Debian, driven by selenium, as
Horizon's own selenium tests. Screenshots of the workflow and the panel are
saved under .state/artifacts/ (or $SNAPSHOT_DASHBOARD_ARTIFACTS).
"""

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import sets
from tests.integration.conftest import ROOT
from tests.integration.conftest import delete_server_and_its_volumes
from tests.integration.conftest import server_by_name
from tests.integration.conftest import wait_for
from tests.integration.test_restore_in_place import image_server  # noqa: F401
from tests.integration.test_restore_in_place import marks
from tests.integration.test_snapshot_sets import create
from tests.integration.test_snapshot_sets import write_markers

HORIZON = 'http://127.0.0.1:8000'
CHROMIUM_FLAGS = (
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    '--window-size=1400,1000')


@pytest.fixture(scope='module')
def horizon(clouds_yaml):
    """`make demo`: Horizon with the plugin, restarted; stopped after the
    module, so no checkout leaves a Horizon on port 8000 to the next
    (``tools/demo`` refuses a port another process holds)."""
    result = subprocess.run([os.path.join(ROOT, 'tools', 'demo')],
                            capture_output=True, text=True, timeout=1200,
                            check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(clouds_yaml) as f:
        auth = json.load(f)['clouds']['minicloud-demo']['auth']
    yield auth
    stop_demo_horizon()


def stop_demo_horizon(timeout_s=30):
    """SIGTERM to the Horizon ``tools/demo`` started, and wait for it."""
    try:
        with open(os.path.join(ROOT, '.state', 'horizon.pid')) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope='module')
def artifacts():
    folder = os.environ.get('SNAPSHOT_DASHBOARD_ARTIFACTS') or os.path.join(
        ROOT, '.state', 'artifacts')
    os.makedirs(folder, exist_ok=True)
    return folder


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = '/usr/bin/chromium'
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument('--user-data-dir=%s' % profile)
        driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'),
                                  options=options)
        driver.implicitly_wait(0)
        try:
            yield driver
        finally:
            driver.quit()


def wait(driver, condition, timeout_s=60):
    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        condition)


def open_row_menu(driver, page, object_id):
    """The row of ``object_id`` on ``page``, its actions menu open."""
    driver.get(HORIZON + page)
    row = wait(driver, ec.presence_of_element_located(
        (By.CSS_SELECTOR, 'tr[data-object-id="%s"]' % object_id)))
    row.find_element(By.CSS_SELECTOR, '.dropdown-toggle').click()
    return row


def delete_row(driver, page, table, object_id):
    """A row's Delete action from its actions menu, confirmed."""
    row = open_row_menu(driver, page, object_id)
    row.find_element(By.CSS_SELECTOR, 'button[value="%s__delete__%s"]'
                     % (table, object_id)).click()
    wait(driver, ec.element_to_be_clickable(
        (By.CSS_SELECTOR, '.modal-footer .btn-danger'))).click()


def log_in(driver, auth):
    driver.get(HORIZON + '/auth/login/')
    wait(driver, ec.presence_of_element_located((By.ID, 'id_username')))
    driver.find_element(By.ID, 'id_username').send_keys(auth['username'])
    driver.find_element(By.ID, 'id_password').send_keys(auth['password'])
    driver.find_element(By.ID, 'loginBtn').click()
    wait(driver, lambda d: '/auth/login' not in d.current_url)


def test_a_set_of_the_ticked_drives_from_the_instances_row_action(
        horizon, browser, artifacts, demo):
    server = server_by_name(demo, 'demo-image')
    before = {s.id for s in sets.list_sets(demo, server_id=server.id)}
    log_in(browser, horizon)

    row = open_row_menu(browser, '/project/instances/', server.id)
    action = row.find_element(
        By.CSS_SELECTOR,
        'a[href="/project/snapshot_sets/create/%s/"]' % server.id)
    assert action.text.strip() == 'Create Consistent Snapshot'
    action.click()

    boxes = wait(browser, lambda d: [
        b for b in d.find_elements(By.CSS_SELECTOR,
                                   'input[name="devices"]')
        if b.is_displayed() or b.get_attribute('value')] or None)
    values = {b.get_attribute('value'): b for b in boxes}
    assert sorted(values) == ['/dev/vda', '/dev/vdb', '/dev/vdc',
                              '/dev/vdd']
    assert all(b.is_selected() for b in boxes)
    preflight = browser.find_element(By.ID, 'snapshot-set-preflight')
    assert 'Guest agent answering' in preflight.text
    # Untick /dev/vdc (the checkbox is styled: click its label).
    browser.execute_script('arguments[0].click();', values['/dev/vdc'])
    assert not values['/dev/vdc'].is_selected()
    browser.save_screenshot(os.path.join(artifacts, 'workflow.png'))
    browser.find_element(
        By.CSS_SELECTOR, '.modal-footer [type="submit"]').click()

    wait(browser, lambda d: d.current_url.rstrip('/').endswith(
        '/project/snapshot_sets'), timeout_s=60)

    def new_set_available(driver):
        found = [s for s in sets.list_sets(demo, server_id=server.id)
                 if s.id not in before]
        if not found or found[0].status != sets.AVAILABLE:
            return None
        driver.refresh()
        rows = driver.find_elements(
            By.CSS_SELECTOR, 'tr[data-object-id="%s"]' % found[0].id)
        return found[0] if rows and 'Available' in rows[0].text else None

    made = wait(browser, new_set_available, timeout_s=240)
    browser.save_screenshot(os.path.join(artifacts, 'snapshot_sets.png'))
    try:
        # Exactly the ticked drives, checked through the APIs.
        assert sorted(d.name for d in made.drives) == [
            '/dev/vda', '/dev/vdb', '/dev/vdd']
        assert made.consistency == 'application'
        image = demo.glance.images.get(made.id)
        bdm = json.loads(image['block_device_mapping'])
        assert [m['device_name'] for m in bdm] == ['/dev/vdd']
        launch_from_the_panel(browser, demo, made)
        delete_from_the_panel(browser, demo, made)
    finally:
        try:
            sets.delete_set(demo, made.id)
        except errors.SetNotFound:
            pass  # deleted from the panel


def test_a_subset_restored_in_place_from_the_panel(
        horizon, browser, artifacts, openstack_cli, demo,
        image_server):  # noqa: F811 - the fixture imported above
    """Restore on the set's row: every drive ticked beside what will
    change; the volume alone left ticked; the instance then reads the
    set's marker on it and today's on its root and ephemeral disk."""
    server, guest, old_volume, made = image_server
    then = write_markers(guest)
    shown = create(openstack_cli, 'demo', server.id)
    made.append(shown['id'])
    since = write_markers(guest)
    log_in(browser, horizon)

    row = open_row_menu(browser, '/project/snapshot_sets/', shown['id'])
    row.find_element(By.CSS_SELECTOR, 'a[href="/project/snapshot_sets/%s/'
                     'restore/"]' % shown['id']).click()
    boxes = wait(browser, lambda d: {
        b.get_attribute('value'): b for b in d.find_elements(
            By.CSS_SELECTOR, 'input[name="devices"]')} or None)
    assert sorted(boxes) == ['/dev/vda', '/dev/vdb', '/dev/vdc']
    assert all(b.is_selected() for b in boxes.values())
    preview = browser.find_element(By.ID, 'snapshot-set-restore-preview')
    assert 'A safety set of /dev/vda, /dev/vdb, /dev/vdc is taken first' \
        in preview.text
    assert '/dev/vdc: volume inplace-image data is replaced' in preview.text
    for device in ('/dev/vda', '/dev/vdb'):
        browser.execute_script('arguments[0].click();', boxes[device])
    browser.save_screenshot(os.path.join(artifacts, 'restore.png'))
    browser.find_element(By.CSS_SELECTOR,
                         '.modal-footer [type="submit"]').click()

    # The run's page, followed until it ends.
    wait(browser, lambda d: '/project/snapshot_sets/run/' in d.current_url)

    def ended(driver):
        driver.refresh()
        text = driver.find_element(By.CSS_SELECTOR,
                                   '.snapshot-run-detail').text
        return text if ('Succeeded' in text or 'Failed' in text) else None
    text = wait(browser, ended, timeout_s=300)
    browser.save_screenshot(os.path.join(artifacts, 'restore_run.png'))
    assert 'Succeeded' in text, text
    assert '/dev/vdc: attached' in text
    restored = [s for s in sets.list_sets(demo, server_id=server.id)
                if s.undo_of]
    made.extend(s.id for s in restored)
    assert [sorted(d.name for d in s.drives) for s in restored] == [
        ['/dev/vdc']]
    assert marks(guest, demo, server.id) == {
        '/dev/vda': since, '/dev/vdb': since, '/dev/vdc': then}
    assert demo.cinder.volumes.get(old_volume).status == 'available'


def launch_from_the_panel(driver, demo, made):
    """Launch Instance on the set's row: a new server whose extra volume is
    made from the set's snapshot."""
    driver.get(HORIZON + '/project/snapshot_sets/')
    row = wait(driver, ec.presence_of_element_located(
        (By.CSS_SELECTOR, 'tr[data-object-id="%s"]' % made.id)))
    row.find_element(By.CSS_SELECTOR, 'a[href="/project/snapshot_sets/%s/'
                     'launch/"]' % made.id).click()
    name = wait(driver, ec.visibility_of_element_located((By.ID, 'id_name')))
    name.clear()
    name.send_keys('from-browser')
    flavor = demo.nova.flavors.find(name='snap.tiny')
    driver.execute_script(
        'document.querySelector(\'select[name="flavor"]\').value = '
        'arguments[0];', flavor.id)
    driver.find_element(By.CSS_SELECTOR,
                        '.modal-footer [type="submit"]').click()
    server = wait(driver, lambda d: next(
        (s for s in demo.nova.servers.list() if s.name == 'from-browser'),
        None), timeout_s=60)
    try:
        server = wait(driver, lambda d: (lambda s: s if s.status in (
            'ACTIVE', 'ERROR') else None)(demo.nova.servers.get(server.id)),
            timeout_s=300)
        assert server.status == 'ACTIVE'
        volumes = [demo.cinder.volumes.get(a.volumeId) for a in
                   demo.nova.volumes.get_server_volumes(server.id)]
        assert [v.snapshot_id for v in volumes] == made.snapshot_ids
    finally:
        delete_server_and_its_volumes(demo, server.id)


def delete_from_the_panel(driver, demo, made):
    delete_row(driver, '/project/snapshot_sets/', 'snapshot_sets', made.id)

    def gone():
        try:
            sets.get_set(demo, made.id)
        except errors.SetNotFound:
            return True
        return False
    wait_for('the set to be deleted', gone, timeout_s=60, interval_s=0.5)
    for snapshot_id in made.snapshot_ids:
        wait_for('snapshot %s deleted' % snapshot_id, lambda s=snapshot_id: (
            s not in {x.id for x in demo.cinder.volume_snapshots.list()}),
            timeout_s=60)


def test_a_schedule_made_in_the_browser_fires_and_prunes(
        horizon, browser, artifacts, demo):
    """'Schedule Backups' from the Instances row action: every minute, one
    drive, keep the last set. The second fire's retention deletes the
    first set, whole. Then the schedule is deleted from its page."""
    server = server_by_name(demo, 'demo-volume')
    log_in(browser, horizon)
    row = open_row_menu(browser, '/project/instances/', server.id)
    row.find_element(By.CSS_SELECTOR, 'a[href="/project/backup_schedules/'
                     'create/%s/"]' % server.id).click()
    name = wait(browser, ec.visibility_of_element_located((By.ID, 'id_name')))
    name.clear()
    name.send_keys('browser schedule')
    browser.execute_script('arguments[0].click();', browser.find_element(
        By.ID, 'id_all_drives'))
    browser.execute_script('arguments[0].click();', browser.find_element(
        By.CSS_SELECTOR, 'input[name="devices"][value="/dev/vdb"]'))
    for field, value in (('timing', 'cron'), ('consistency', 'crash'),
                         ('timezone', 'Europe/Paris')):
        # Horizon's themable selects: set the select, tell its listeners.
        browser.execute_script(
            'var select = document.querySelector(\'select[name="%s"]\');'
            'select.value = arguments[0];'
            'select.dispatchEvent(new Event("change", {bubbles: true}));'
            % field, value)
    wait(browser, ec.visibility_of_element_located((By.ID, 'id_cron')))
    assert not browser.find_element(By.ID, 'id_hour').is_displayed()
    for field, value in (('cron', '* * * * *'), ('keep_last', '1')):
        box = browser.find_element(By.ID, 'id_' + field)
        box.clear()
        box.send_keys(value)
    browser.save_screenshot(os.path.join(artifacts, 'schedule_form.png'))
    browser.find_element(By.CSS_SELECTOR,
                         '.modal-footer [type="submit"]').click()
    wait(browser, lambda d: d.current_url.rstrip('/').endswith(
        '/project/backup_schedules'), timeout_s=60)
    row = wait(browser, lambda d: next(
        (r for r in d.find_elements(By.CSS_SELECTOR, 'tr[data-object-id]')
         if 'browser schedule' in r.text), None))
    schedule_id = row.get_attribute('data-object-id')
    assert 'Every minute' in row.text or '* * * * *' in row.text, row.text

    def mine():
        return [s for s in sets.list_sets(demo, server_id=server.id)
                if s.schedule_id == schedule_id]
    try:
        first = wait_for('the first fire', lambda: (
            lambda found: found[0] if found and found[0].status ==
            sets.AVAILABLE else None)(mine()), timeout_s=150)
        assert [d.name for d in first.drives] == ['/dev/vdb']
        second = wait_for('the second fire and its pruning', lambda: (
            lambda found: found[0] if len(found) == 1
            and found[0].id != first.id else None)(mine()), timeout_s=150)
        with pytest.raises(errors.SetNotFound):
            sets.get_set(demo, first.id)
        for snapshot_id in first.snapshot_ids:
            wait_for('the pruned snapshot to go', lambda s=snapshot_id: (
                s not in {x.id for x in
                          demo.cinder.volume_snapshots.list()}),
                timeout_s=60)
        assert second.status == sets.AVAILABLE
        browser.get(HORIZON + '/project/backup_schedules/%s/' % schedule_id)
        wait(browser, ec.presence_of_element_located(
            (By.ID, 'runs')))
        browser.save_screenshot(os.path.join(artifacts,
                                             'schedule_detail.png'))
        assert second.id in browser.page_source
    finally:
        delete_row(browser, '/project/backup_schedules/',
                   'backup_schedules', schedule_id)
        wait(browser, lambda d: not d.find_elements(
            By.CSS_SELECTOR, 'tr[data-object-id="%s"]' % schedule_id))
        for snapshot_set in mine():
            sets.delete_set(demo, snapshot_set.id)
