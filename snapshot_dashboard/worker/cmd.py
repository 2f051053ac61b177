"""``snapshot-dashboard-worker``: executes queued runs, recovers runs whose
worker died. Several may run at once, on one host or many.

It runs in Horizon's Django settings (``DJANGO_SETTINGS_MODULE``, by default
``openstack_dashboard.settings``: the dashboard's database, and
``SNAPSHOT_DASHBOARD_SERVICE_AUTH`` / ``SNAPSHOT_DASHBOARD_AGENT_URL``).
SIGTERM lets the run in hand finish, then exits.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading


def main(argv=None):
    parser = argparse.ArgumentParser(prog='snapshot-dashboard-worker',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--poll', type=float, default=1.0,
                        help='seconds between looks for work when idle')
    parser.add_argument('--heartbeat', type=float, default=5.0,
                        help='seconds between heartbeats of a run')
    parser.add_argument('--stale', type=float, default=30.0,
                        help='seconds without a heartbeat before another '
                             'worker recovers a run')
    parser.add_argument('--reap-interval', type=float, default=600.0,
                        help='seconds between two passes of the reaper, '
                             'which deletes what dead runs left (0: never)')
    parser.add_argument('--grace-seconds', type=float, default=7200.0,
                        help='age under which the reaper leaves a tagged '
                             'volume snapshot or image alone (longer than '
                             'a run can take)')
    parser.add_argument('--reap-once', action='store_true',
                        help='run the reaper once, print what it deleted '
                             '(one JSON object per line) and exit')
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='%(asctime)s %(process)d %(levelname)s %(name)s %(message)s')
    os.environ.setdefault('DJANGO_SETTINGS_MODULE',
                          'openstack_dashboard.settings')
    import django
    django.setup()
    # Models import only once Django is set up.
    from snapshot_dashboard.worker import service

    if args.reap_once:
        from snapshot_dashboard import credentials
        from snapshot_dashboard.orchestration import clients

        records = service.reap(clients.Clients(credentials.service_session()),
                               args.grace_seconds)
        for record in records:
            print(json.dumps({
                'kind': record.kind, 'id': record.resource_id,
                'run_id': record.run_id, 'project_id': record.project_id,
                'outcome': record.outcome}))
        return 0 if all(r.deleted for r in records) else 1
    worker = service.make_worker(poll_s=args.poll,
                                 heartbeat_s=args.heartbeat,
                                 stale_s=args.stale,
                                 reap_interval_s=args.reap_interval,
                                 reap_grace_s=args.grace_seconds)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    worker.serve(stopping)


if __name__ == '__main__':
    sys.exit(main())
