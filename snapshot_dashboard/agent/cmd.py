"""The console script ``snapshot-dashboard-agent --config-file <file>``.

One process with native threads (cheroot): the leases live in it. On
start it thaws any guest found frozen; on SIGTERM or SIGINT it releases
every lease (thaw, resume) before it exits.
"""

import signal
import sys
import threading

from cheroot import wsgi
from oslo_config import cfg
from oslo_log import log

from snapshot_dashboard.agent import deploy

LOG = log.getLogger(__name__)


def main(argv=None):
    conf = cfg.ConfigOpts()
    deploy.register(conf)
    conf(sys.argv[1:] if argv is None else argv,
         project='snapshot-dashboard', prog='snapshot-dashboard-agent')
    log.setup(conf, 'snapshot-dashboard-agent')

    agent = deploy.make_agent(conf)
    thawed = agent.thaw_frozen_guests()
    if thawed:
        LOG.warning('Thawed at start: %s', ', '.join(thawed))
    agent.captures.forget_leftovers(agent.hypervisor)
    server = wsgi.Server((conf.agent.bind_host, conf.agent.bind_port),
                         deploy.deploy(conf, agent),
                         numthreads=conf.agent.threads)

    # Signal handlers only flag; the main thread releases the leases, then
    # stops the server, with a bound on how long a stuck connection may hold
    # the exit.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    serving = threading.Thread(target=server.safe_start, daemon=True,
                               name='wsgi-server')
    serving.start()
    LOG.info('Listening on %s:%d', conf.agent.bind_host, conf.agent.bind_port)
    try:
        while not stopping.wait(1) and serving.is_alive():
            pass
    finally:
        LOG.info('Stopping: releasing every lease first')
        agent.leases.stop()
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(timeout=10)


if __name__ == '__main__':
    main()
