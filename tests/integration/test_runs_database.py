"""The runs database where operators run it: the mini-cloud's MariaDB.

The claims of ``snapshot_dashboard.worker.runs`` run in a Python of their
own whose default database is a throwaway one
(``test_snapshot_dashboard_<pid>``), made, migrated and dropped there with
the credentials and options of the mini-cloud's settings (those of its API
and worker), never on their live database. This file is that Python's
script too; the tests assert what it saw.
"""

import json
import os
import runpy
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SETTINGS = os.path.join(ROOT, '.state', 'minicloud', 'etc',
                        'snapshot-dashboard', 'snapshot_dashboard_settings.py')


@pytest.fixture(scope='module')
def seen(clouds_yaml):
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), SETTINGS],
        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
        text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_the_mini_cloud_keeps_its_runs_in_mariadb_as_django_advises(seen):
    assert seen['session'] == {
        'vendor': 'mysql', 'skip_locked': True,
        'isolation': 'READ-COMMITTED', 'charset': 'utf8mb4',
        'time_zone': '+00:00'}


def test_a_claim_reads_its_candidates_for_update_skip_locked(seen):
    assert seen['claim']['taken']
    assert seen['claim']['skip_locked_reads'] == 1


def test_two_concurrent_claims_take_different_runs_without_waiting(seen):
    race = seen['race']
    assert race['a'] == race['oldest']
    # While A's transaction still locks what it read, B neither waits for
    # it nor takes A's run: it skips the locked rows.
    assert 'b_error' not in race, race
    assert race['b_waited_s'] < 1.0, race
    assert race['b_while_a_holds'] in (None, race['other']), race
    assert race['b'] == race['other']
    assert sorted(race['rows']) == sorted([
        ['running', 'worker-a', 'server-a'],
        ['running', 'worker-b', 'server-b']])
    assert race['distinct_claims']


def test_the_database_refuses_a_second_run_of_a_held_server(seen):
    held = seen['held']
    assert held['first_taken']
    assert held['second_claim'] is None
    assert held['second_take'] is None
    assert held['unique_violation']
    assert held['second_row'] == ['queued', None]


# -- the probe, in its own Python ---------------------------------------------

def pk_of(run):
    return run and str(run.pk)


def queue(server_id):
    from snapshot_dashboard import models
    return models.SnapshotRun.objects.create(
        project_id='probe', user_id='probe', server_id=server_id,
        consistency='crash')


def session():
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_isolation', "
            "'transaction_isolation', 'character_set_connection', "
            "'time_zone')")
        variables = dict(cursor.fetchall())
    return {'vendor': connection.vendor,
            'skip_locked': (
                connection.features.has_select_for_update_skip_locked),
            'isolation': variables.get('transaction_isolation',
                                       variables.get('tx_isolation')),
            'charset': variables['character_set_connection'],
            'time_zone': variables['time_zone']}


def claim():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from snapshot_dashboard.worker import runs
    queue('server-a')
    with CaptureQueriesContext(connection) as queries:
        taken = runs.claim_queued('probe')
    return {'taken': taken is not None,
            'skip_locked_reads': sum('FOR UPDATE SKIP LOCKED' in q['sql']
                                     for q in queries)}


def race():
    """Worker A claims inside a transaction it keeps open; meanwhile worker
    B, on its own connection, claims too, then again once A committed."""
    from django.db import DatabaseError
    from django.db import connection
    from django.db import transaction

    from snapshot_dashboard import models
    from snapshot_dashboard.worker import runs
    oldest, other = queue('server-a'), queue('server-b')
    seen = {'oldest': str(oldest.pk), 'other': str(other.pk)}
    a_holds, b_claimed = threading.Event(), threading.Event()

    def worker_a():
        try:
            with transaction.atomic():
                seen['a'] = pk_of(runs.claim_queued('worker-a'))
                a_holds.set()
                b_claimed.wait(30)
        finally:
            a_holds.set()
            connection.close()

    def worker_b():
        try:
            a_holds.wait(30)
            with connection.cursor() as cursor:
                cursor.execute('SET SESSION innodb_lock_wait_timeout = 5')
            started, taken = time.monotonic(), None
            try:
                taken = runs.claim_queued('worker-b')
                seen['b_while_a_holds'] = pk_of(taken)
            except DatabaseError as e:
                seen['b_error'] = str(e)
            seen['b_waited_s'] = time.monotonic() - started
            b_claimed.set()
            thread_a.join()
            taken = taken or runs.claim_queued('worker-b')
            seen['b'] = pk_of(taken)
        finally:
            b_claimed.set()
            connection.close()

    thread_a = threading.Thread(target=worker_a)
    thread_b = threading.Thread(target=worker_b)
    for thread in (thread_a, thread_b):
        thread.start()
    for thread in (thread_a, thread_b):
        thread.join(60)
    rows = models.SnapshotRun.objects.values_list('state', 'worker',
                                                  'holding_server', 'claim')
    seen['rows'] = [list(row[:3]) for row in rows]
    seen['distinct_claims'] = len({row[3] for row in rows}) == 2
    return seen


def held():
    from django.db import IntegrityError

    from snapshot_dashboard import models
    from snapshot_dashboard.worker import runs
    queue('server-a')
    second = queue('server-a')
    seen = {'first_taken': runs.claim_queued('worker-a') is not None,
            'second_claim': pk_of(runs.claim_queued('worker-b'))}
    # Past the claim's filter, straight at the unique column.
    seen['second_take'] = pk_of(runs.take('worker-b', second, hold=True,
                                          state=models.RUNNING))
    try:
        models.SnapshotRun.objects.filter(pk=second.pk).update(
            holding_server='server-a')
        seen['unique_violation'] = False
    except IntegrityError:
        seen['unique_violation'] = True
    seen['second_row'] = list(models.SnapshotRun.objects.values_list(
        'state', 'holding_server').get(pk=second.pk))
    return seen


def probe(settings_file):
    import django
    from django.conf import settings
    cloud = {name: value for name, value in
             runpy.run_path(settings_file).items() if name.isupper()}
    live = cloud['DATABASES']['default']
    cloud['DATABASES'] = {'default': dict(live, TEST={
        'NAME': 'test_%s_%d' % (live['NAME'], os.getpid()),
        'CHARSET': 'utf8mb4', 'COLLATION': 'utf8mb4_unicode_ci'})}
    settings.configure(**cloud)
    django.setup()
    from django.db import connection

    from snapshot_dashboard import models
    connection.creation.create_test_db(verbosity=0, autoclobber=True,
                                       serialize=False)
    seen = {}
    try:
        for name, scenario in [('session', session), ('claim', claim),
                               ('race', race), ('held', held)]:
            models.SnapshotRun.objects.all().delete()
            seen[name] = scenario()
    finally:
        connection.creation.destroy_test_db(live['NAME'], verbosity=0)
    return seen


if __name__ == '__main__':
    print(json.dumps(probe(sys.argv[1])))
