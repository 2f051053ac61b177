"""How long the worker takes to find due schedules among many.

    .venv/bin/python tools/benchmarks/schedule_scan.py [--schedules 10000]

Makes a throwaway SQLite database (the demo's engine; the query is the same
on MySQL/MariaDB and PostgreSQL, on the ``(enabled, next_run_at)`` index),
fills it with schedules whose next runs spread over a week, a few of them
due now, and times the worker's scan (the due query) and a whole
``fire_due`` (scan, compare-and-set, a run queued per due schedule).
Prints figures; asserts nothing.
"""

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--schedules', type=int, default=10000)
    parser.add_argument('--due', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix='schedule-scan-')
    sys.path.insert(0, REPO)
    os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.dashboard.settings'
    import django
    from django.conf import settings
    settings.DATABASES['default'] = {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.path.join(folder, 'scan.sqlite3')}
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from snapshot_dashboard import models
    from snapshot_dashboard.worker import schedules

    call_command('migrate', verbosity=0)
    now = timezone.now()
    rng = random.Random(1)  # noqa: S311 - spread, not secrets
    rows = []
    for i in range(args.schedules):
        due = i < args.due
        offset = (-rng.randint(1, 600) if due
                  else rng.randint(60, 7 * 24 * 3600))
        rows.append(models.Schedule(
            project_id='p%d' % (i % 50), user_id='u', server_id='s%d' % i,
            server_name='s%d' % i, consistency='auto', timing='cron',
            cron='%d * * * *' % (i % 60), timezone='Europe/Paris',
            name='schedule %d' % i, keep_last=3, trust_id='t%d' % i,
            enabled=rng.random() > 0.05 or due,
            next_run_at=now + datetime.timedelta(seconds=offset)))
    models.Schedule.objects.bulk_create(rows, batch_size=1000)

    scans = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        found = list(schedules.due(now)[:schedules.BATCH])
        scans.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    queued = schedules.fire_due(now)
    fire_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    again = schedules.fire_due(now)
    idle_ms = (time.perf_counter() - started) * 1000

    print('%d schedules, %d due: scan median %.2f ms, max %.2f ms '
          '(%d found)' % (args.schedules, args.due,
                          statistics.median(scans), max(scans), len(found)))
    print('fire_due: %d runs queued in %.1f ms; the next look (nothing '
          'due) %.2f ms, %d queued' % (len(queued), fire_ms, idle_ms,
                                       len(again)))


if __name__ == '__main__':
    main()
