"""The console script ``snapshot-dashboard-api --config-file <file>``: the
REST API in its own threaded server (cheroot), for hosts without a WSGI
server. SIGTERM or SIGINT stops it."""

import signal
import sys
import threading

from cheroot import wsgi
from oslo_log import log

from snapshot_dashboard.restapi import deploy

LOG = log.getLogger(__name__)


def main(argv=None):
    conf = deploy.load_conf(sys.argv[1:] if argv is None else argv)
    log.setup(conf, 'snapshot-dashboard-api')
    server = wsgi.Server((conf.api.bind_host, conf.api.bind_port),
                         deploy.deploy(conf, deploy.make_service(conf)),
                         numthreads=conf.api.threads)
    server.max_request_body_size = conf.api.max_body_bytes
    # Bound here, so a port already taken fails the start, loudly.
    server.prepare()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    serving = threading.Thread(target=server.serve, daemon=True,
                               name='wsgi-server')
    serving.start()
    LOG.info('Listening on %s:%d', conf.api.bind_host, conf.api.bind_port)
    try:
        while not stopping.wait(1) and serving.is_alive():
            pass
    finally:
        server.stop()
    if not stopping.is_set():
        LOG.error('The server stopped by itself')
        sys.exit(1)


if __name__ == '__main__':
    main()
