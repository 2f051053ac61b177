"""``openstack server snapshot create|list|show|delete``."""

import logging
import os

from osc_lib import exceptions
from osc_lib import utils
from osc_lib.command import command

from snapshot_dashboard.orchestration import agent
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window

LOG = logging.getLogger(__name__)

LIST_COLUMNS = ('ID', 'Name', 'Server', 'Consistency', 'Window (ms)',
                'Drives', 'Status', 'Created At')


def _drives(snapshot_set):
    return ', '.join(d.name for d in snapshot_set.drives)


def _row(snapshot_set):
    return (snapshot_set.id, snapshot_set.name, snapshot_set.server_id,
            snapshot_set.consistency, snapshot_set.window_ms,
            _drives(snapshot_set), snapshot_set.status,
            snapshot_set.created_at or '')


def _details(snapshot_set):
    details = {
        'id': snapshot_set.id,
        'name': snapshot_set.name,
        'server': snapshot_set.server_id,
        'status': snapshot_set.status,
        'consistency': snapshot_set.consistency,
        'requested_consistency': snapshot_set.requested_consistency,
        'window_ms': snapshot_set.window_ms,
        'bootable': snapshot_set.bootable,
        'drives': '\n'.join(
            '%s %s %s GB %s (captured at +%s ms%s)' % (
                d.name, d.kind, d.size_gb,
                'snapshot ' + d.snapshot_id if d.snapshot_id
                else 'image ' + (d.image_id or ''),
                d.captured_ms,
                '' if d.shared_instant else ', own instant')
            for d in snapshot_set.drives),
    }
    if snapshot_set.created_at:
        details['created_at'] = snapshot_set.created_at
    if snapshot_set.excluded:
        details['not_captured'] = '\n'.join(
            '%s: %s' % (e['device'], e['reason'])
            for e in snapshot_set.excluded)
    return tuple(zip(*sorted(details.items()), strict=True))


class _SetCommand(command.Command):
    @property
    def clients(self):
        return self.app.client_manager.snapshot_sets

    def find_server(self, name_or_id):
        return utils.find_resource(self.clients.nova.servers, name_or_id)


class CreateSnapshotSet(_SetCommand, command.ShowOne):
    _description = ('Take a consistent snapshot set of a server: every '
                    'chosen drive at one instant, packaged as one image')
    clock = window.Clock

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('server', metavar='<server>',
                            help='Server to snapshot (name or ID)')
        parser.add_argument(
            '--device', metavar='<device>', action='append', dest='devices',
            help='Drive to capture, as vda or /dev/vdb (repeat for more; '
                 'default: every drive)')
        parser.add_argument('--name', metavar='<name>',
                            help='Name of the set (default: server and time)')
        parser.add_argument('--description', metavar='<description>',
                            default='', help='Description of the set')
        parser.add_argument(
            '--consistency', choices=window.LEVELS, default=window.AUTO,
            help='; '.join('%s: %s' % item
                           for item in window.LEVEL_HELP.items()))
        parser.add_argument(
            '--budget', metavar='<seconds>', type=int,
            default=run.DEFAULT_BUDGET_S,
            help='Longest the guest may be held still (default: %(default)s)')
        parser.add_argument(
            '--wait', action='store_true',
            help='Return only when the set is usable (its image uploaded)')
        parser.add_argument(
            '--agent-url', metavar='<url>',
            default=os.environ.get('SNAPSHOT_DASHBOARD_AGENT_URL'),
            help='URL of the compute-side agent; {host} stands for the '
                 "server's compute host, which only admins may see "
                 '(default: env SNAPSHOT_DASHBOARD_AGENT_URL; none: no '
                 'application consistency, crash through Nova\'s pause)')
        return parser

    def take_action(self, parsed_args):
        server = self.find_server(parsed_args.server)
        try:
            snapshot_set = run.create_snapshot_set(
                self.clients, server.id, devices=parsed_args.devices,
                name=parsed_args.name, description=parsed_args.description,
                consistency=parsed_args.consistency,
                budget_s=parsed_args.budget, wait=parsed_args.wait,
                progress=self._progress, clock=self.clock,
                agent_locator=(agent.AgentLocator(parsed_args.agent_url)
                               if parsed_args.agent_url else None))
        except errors.SnapshotSetError as e:
            raise exceptions.CommandError(str(e)) from e
        return _details(snapshot_set)

    def _progress(self, event):
        LOG.info('%s %s%s%s', event.step, event.state,
                 ' ' + event.device if event.device else '',
                 ': ' + event.detail if event.detail else '')


class ListSnapshotSet(_SetCommand, command.Lister):
    _description = "List the project's snapshot sets"

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--server', metavar='<server>',
                            help='Only the sets of this server (name or ID)')
        return parser

    def take_action(self, parsed_args):
        server_id = None
        if parsed_args.server:
            server_id = self.find_server(parsed_args.server).id
        found = sets.list_sets(self.clients, server_id=server_id)
        return LIST_COLUMNS, [_row(s) for s in found]


class ShowSnapshotSet(_SetCommand, command.ShowOne):
    _description = 'Show a snapshot set and each of its drives'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshot_set', metavar='<set>',
                            help='Snapshot set (its image ID)')
        return parser

    def take_action(self, parsed_args):
        try:
            snapshot_set = sets.get_set(self.clients,
                                        parsed_args.snapshot_set)
        except errors.SnapshotSetError as e:
            raise exceptions.CommandError(str(e)) from e
        return _details(snapshot_set)


class DeleteSnapshotSet(_SetCommand):
    _description = ('Delete snapshot sets: the image and every volume '
                    'snapshot of each set, and nothing else')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshot_sets', metavar='<set>', nargs='+',
                            help='Snapshot set(s) to delete (image ID)')
        return parser

    def take_action(self, parsed_args):
        failed = 0
        for set_id in parsed_args.snapshot_sets:
            try:
                sets.delete_set(self.clients, set_id)
            except errors.SnapshotSetError as e:
                failed += 1
                LOG.error(str(e))
        if failed:
            raise exceptions.CommandError(
                '%d of %d snapshot sets failed to delete.'
                % (failed, len(parsed_args.snapshot_sets)))
