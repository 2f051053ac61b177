"""``snapshot-dashboard-worker``: executes queued runs, recovers runs whose
worker died. Several may run at once, on one host or many.

It runs in Horizon's Django settings (``DJANGO_SETTINGS_MODULE``, by default
``openstack_dashboard.settings``: the dashboard's database, and
``SNAPSHOT_DASHBOARD_SERVICE_AUTH`` / ``SNAPSHOT_DASHBOARD_AGENT_URL``).
SIGTERM lets the run in hand finish, then exits.
"""

import argparse
import logging
import os
import signal
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

    worker = service.make_worker(poll_s=args.poll,
                                 heartbeat_s=args.heartbeat,
                                 stale_s=args.stale)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    worker.serve(stopping)


if __name__ == '__main__':
    main()
