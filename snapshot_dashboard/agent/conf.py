"""Options of the agent (``[agent]``, ``[libvirt]``), for oslo.config."""

from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_log import log

agent_opts = [
    # The worker calls in from the dashboard host, as Nova's API default.
    cfg.HostAddressOpt('bind_host', default='0.0.0.0',  # noqa: S104
                       help='Address the agent listens on.'),
    cfg.PortOpt('bind_port', default=9797, help='Port the agent listens on.'),
    cfg.IntOpt('max_budget', default=300, min=1,
               help='Longest lease a caller may ask for, in seconds: the '
                    'watchdog thaws or resumes a guest after its budget.'),
    cfg.IntOpt('threads', default=8, min=1,
               help='Threads of the WSGI server.'),
    cfg.ListOpt('privileged_roles', default=['admin', 'service'],
                help='Roles that may act on any project\'s server.'),
    cfg.StrOpt('state_dir', default='/var/lib/snapshot-dashboard-agent',
               help='Where the agent keeps its leases (each written before '
                    'a guest is frozen or paused, so that an agent that '
                    'restarts releases what the one before held) and its '
                    'lock: one agent per state_dir, so give each agent of a '
                    'host the same one. A local filesystem.'),
    cfg.StrOpt('capture_dir',
               default='/var/lib/snapshot-dashboard-agent/captures',
               help='Where copies of local drives are kept until they are '
                    'uploaded to Glance. Needs room for the largest set of '
                    'local drives captured at once.'),
    cfg.IntOpt('capture_keep', default=600, min=1,
               help='Seconds a copy that nobody exports is kept before it '
                    'is removed. A live caller exports its copies seconds '
                    'after they are made; one that has not within this '
                    'time belongs to a caller that died (the reaper cannot '
                    'see the copies of an agent).'),
    cfg.ListOpt('image_interfaces', default=['internal', 'public'],
                help='Glance endpoint interfaces to upload copies to, in '
                     'order of preference (from the caller\'s catalog).'),
    cfg.StrOpt('region_name', help='Region of the Glance endpoint.'),
]

libvirt_opts = [
    cfg.StrOpt('connection_uri', default='qemu:///system',
               help='libvirt connection of the compute node.'),
    cfg.IntOpt('agent_timeout', default=5, min=1,
               help='Seconds libvirt waits for the guest agent on a freeze '
                    'or thaw (its default can block for minutes).'),
    cfg.IntOpt('ping_timeout', default=2, min=1,
               help='Seconds to wait for guest-ping.'),
    cfg.IntOpt('connect_retry', default=10, min=0,
               help='Seconds to keep trying to reach libvirtd, with a short '
                    'backoff, before a call fails (503): a libvirtd restart '
                    'takes a few seconds and is ridden through.'),
    cfg.IntOpt('thaw_guard', default=600, min=1,
               help='After a freeze or thaw the guest agent did not answer, '
                    'seconds to keep asking it and thawing a late freeze.'),
]


def list_opts():
    """For oslo-config-generator (namespace snapshot_dashboard.agent)."""
    return [('agent', agent_opts), ('libvirt', libvirt_opts)]


def register_opts(conf):
    for group, options in list_opts() + list(auth_token.list_opts()):
        conf.register_opts(options, group=group)
    log.register_options(conf)
