"""The console script ``snapshot-dashboard-agent --config-file <file>``.

One process with native threads (cheroot): the leases live in it. On
start it thaws any guest found frozen; on SIGTERM or SIGINT it releases
every lease (thaw, resume) before it exits.
"""

import signal
import sys

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
    server = wsgi.Server((conf.agent.bind_host, conf.agent.bind_port),
                         deploy.deploy(conf, agent),
                         numthreads=conf.agent.threads)

    def stop(signum, frame):
        LOG.info('Signal %d: releasing every lease, then stopping', signum)
        agent.leases.stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info('Listening on %s:%d', conf.agent.bind_host, conf.agent.bind_port)
    try:
        server.start()
    finally:
        agent.leases.stop()
        server.stop()


if __name__ == '__main__':
    main()
