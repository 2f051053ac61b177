"""The console script ``snapshot-dashboard-agent --config-file <file>``.

One process with native threads (cheroot): the leases live in it, and in
its lease file. It first takes the lock of its ``state_dir`` (a second
agent exits with status 1 having touched nothing), then releases what an
agent before it held, thaws any guest found frozen, and listens. On SIGTERM
or SIGINT it releases every lease (thaw, resume) before it exits.
"""

import signal
import sys
import threading

from cheroot import wsgi
from oslo_config import cfg
from oslo_log import log

from snapshot_dashboard.agent import deploy
from snapshot_dashboard.agent import state

LOG = log.getLogger(__name__)


def _listen(server):
    """Bind and listen; why it could not, or None."""
    try:
        server.prepare()
    except OSError as e:
        return str(e)
    return None


def main(argv=None):
    """Run the agent; returns the exit status."""
    conf = cfg.ConfigOpts()
    deploy.register(conf)
    conf(sys.argv[1:] if argv is None else argv,
         project='snapshot-dashboard', prog='snapshot-dashboard-agent')
    log.setup(conf, 'snapshot-dashboard-agent')

    # Before anything else: a second agent must not thaw, resume or remove
    # what the running one holds.
    lock = state.HostLock(conf.agent.state_dir)
    if not lock.acquire():
        LOG.error('Another snapshot-dashboard-agent (pid %s) holds %s: this '
                  'one exits and touches nothing.', lock.holder or 'unknown',
                  lock.path)
        return 1

    agent = deploy.make_agent(conf)
    agent.release_inherited_leases()
    thawed = agent.thaw_frozen_guests()
    if thawed:
        LOG.warning('Thawed at start: %s', ', '.join(thawed))
    agent.captures.forget_leftovers(agent.hypervisor)
    server = wsgi.Server((conf.agent.bind_host, conf.agent.bind_port),
                         deploy.deploy(conf, agent),
                         numthreads=conf.agent.threads)
    refused = _listen(server)
    if refused:
        LOG.error('Cannot listen on %s:%d: %s', conf.agent.bind_host,
                  conf.agent.bind_port, refused)
        agent.leases.stop()
        lock.release()
        return 1

    # Signal handlers only flag; the main thread releases the leases, then
    # stops the server, with a bound on how long a stuck connection may hold
    # the exit.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    serving = threading.Thread(target=server.serve, daemon=True,
                               name='wsgi-server')
    serving.start()
    LOG.info('Listening on %s:%d', conf.agent.bind_host, conf.agent.bind_port)
    try:
        while not stopping.wait(1) and serving.is_alive():
            pass
    finally:
        if not stopping.is_set():
            LOG.error('The WSGI server stopped by itself')
        LOG.info('Stopping: releasing every lease first')
        agent.leases.stop()
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(timeout=10)
        lock.release()
    return 0 if stopping.is_set() else 1


if __name__ == '__main__':
    sys.exit(main())
