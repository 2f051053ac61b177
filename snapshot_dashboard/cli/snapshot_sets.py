"""``openstack server snapshot create|list|show|delete|restore|undo``:
the REST API of snapshot sets, or (but for restore) with ``--in-process``
through the core."""

import logging
import os

from osc_lib import exceptions
from osc_lib import utils
from osc_lib.command import command

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import agent
from snapshot_dashboard.orchestration import errors
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run
from snapshot_dashboard.orchestration import sets
from snapshot_dashboard.orchestration import window as window_module

LOG = logging.getLogger(__name__)

# Past this, a run nobody took is worth a word.
QUEUED_WARNING_S = 120
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


class _Clients:
    """The cloud's clients and the snapshot sets service's."""

    @property
    def clients(self):
        return self.app.client_manager.snapshot_sets.clients

    @property
    def service(self):
        return self.app.client_manager.snapshot_sets.service


class _SetCommand(_Clients, command.Command):
    """A command on snapshot sets: through the REST API, or with
    ``--in-process`` through the orchestration core here."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--in-process', action='store_true',
            help='Act from this machine with the orchestration core instead '
                 'of the snapshot sets service (for admins, and clouds '
                 'without the service)')
        return parser

    def find_server(self, name_or_id):
        return utils.find_resource(self.clients.nova.servers, name_or_id)

    def take_action(self, parsed_args):
        try:
            if parsed_args.in_process:
                return self.in_process(parsed_args)
            return self.through_service(parsed_args)
        except (errors.SnapshotSetError,
                service_client.ServiceError) as e:
            raise exceptions.CommandError(str(e)) from e


class _Following:
    """Follows a run of the service until it ends."""

    clock = window_module.Clock
    poll_s = 1

    def _follow(self, queued):
        """Poll the run until it ends; each new step in the log (-v)."""
        shown = 0
        current = queued
        started = self.clock.now()
        warned = False
        while current['state'] not in ('succeeded', 'failed'):
            self.clock.sleep(self.poll_s)
            try:
                current = self.service.get_run(queued['id'])
            except service_client.ServiceError as e:
                raise exceptions.CommandError(
                    'Lost track of run %s (%s); it goes on in the service.'
                    % (queued['id'], e)) from e
            for event in current['events'][shown:]:
                _log_event(event.get('step'), event.get('state'),
                           event.get('device'), event.get('detail'))
            shown = len(current['events'])
            if (current['state'] == 'queued' and not warned
                    and self.clock.now() - started > QUEUED_WARNING_S):
                warned = True
                LOG.warning('Run %s is still queued after %d s: no worker '
                            'of the snapshot sets service has taken it.',
                            current['id'], QUEUED_WARNING_S)
        return current


class CreateSnapshotSet(_SetCommand, _Following, command.ShowOne):
    _description = ('Take a consistent snapshot set of a server: every '
                    'chosen drive at one instant, packaged as one image')

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
            '--consistency', choices=window_module.LEVELS,
            default=window_module.AUTO,
            help='; '.join('%s: %s' % item
                           for item in window_module.LEVEL_HELP.items()))
        parser.add_argument(
            '--budget', metavar='<seconds>', type=int,
            default=run.DEFAULT_BUDGET_S,
            help='Longest the guest may be held still (default: %(default)s)')
        parser.add_argument(
            '--wait', action='store_true',
            help='Return only when the set is usable (its image uploaded); '
                 'without it, the queued run is shown')
        parser.add_argument(
            '--agent-url', metavar='<url>',
            help='With --in-process: URL of the compute-side agent; {host} '
                 "stands for the server's compute host, which only admins "
                 'may see (default: env SNAPSHOT_DASHBOARD_AGENT_URL; none: '
                 "no application consistency, crash through Nova's pause)")
        return parser

    def through_service(self, parsed_args):
        """Queue the run; with --wait, follow it until its set is
        usable."""
        if parsed_args.agent_url:
            raise exceptions.CommandError(
                '--agent-url is for --in-process: the snapshot sets service '
                'finds the agent of the server itself.')
        server = self.find_server(parsed_args.server)
        queued = self.service.create_run(
            server.id, devices=parsed_args.devices,
            consistency=parsed_args.consistency, name=parsed_args.name,
            description=parsed_args.description,
            budget_s=parsed_args.budget)
        if not parsed_args.wait:
            return _run_details(queued)
        ended = self._follow(queued)
        if ended['state'] != 'succeeded':
            raise exceptions.CommandError(
                'Run %s failed: %s' % (ended['id'], ended['error']))
        return _details(sets.SnapshotSet.from_dict(
            self.service.get_set(ended['set_id'])))

    def in_process(self, parsed_args):
        server = self.find_server(parsed_args.server)
        agent_url = (parsed_args.agent_url
                     or os.environ.get('SNAPSHOT_DASHBOARD_AGENT_URL'))
        snapshot_set = run.create_snapshot_set(
            self.clients, server.id, devices=parsed_args.devices,
            name=parsed_args.name, description=parsed_args.description,
            consistency=parsed_args.consistency,
            budget_s=parsed_args.budget, wait=parsed_args.wait,
            progress=lambda e: _log_event(e.step, e.state, e.device,
                                          e.detail),
            clock=self.clock,
            agent_locator=(agent.AgentLocator(agent_url) if agent_url
                           else None))
        return _details(snapshot_set)


def _log_event(step, state, device, detail):
    LOG.info('%s %s%s%s', step, state, ' ' + device if device else '',
             ': ' + detail if detail else '')


def _run_details(queued):
    details = {key: queued[key] for key in (
        'id', 'state', 'server_id', 'consistency', 'budget_s', 'created_at')}
    details['devices'] = ', '.join(queued['devices'] or ['every drive'])
    return tuple(zip(*sorted(details.items()), strict=True))


class ListSnapshotSet(_SetCommand, command.Lister):
    _description = "List the project's snapshot sets"

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--server', metavar='<server>',
                            help='Only the sets of this server (name or ID)')
        return parser

    def _server_id(self, parsed_args):
        if parsed_args.server:
            return self.find_server(parsed_args.server).id
        return None

    def through_service(self, parsed_args):
        found = self.service.list_sets(self._server_id(parsed_args))
        return LIST_COLUMNS, [_row(sets.SnapshotSet.from_dict(s))
                              for s in found]

    def in_process(self, parsed_args):
        found = sets.list_sets(self.clients,
                               server_id=self._server_id(parsed_args))
        return LIST_COLUMNS, [_row(s) for s in found]


class ShowSnapshotSet(_SetCommand, command.ShowOne):
    _description = 'Show a snapshot set and each of its drives'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshot_set', metavar='<set>',
                            help='Snapshot set (its image ID)')
        return parser

    def through_service(self, parsed_args):
        return _details(sets.SnapshotSet.from_dict(
            self.service.get_set(parsed_args.snapshot_set)))

    def in_process(self, parsed_args):
        return _details(sets.get_set(self.clients, parsed_args.snapshot_set))


class DeleteSnapshotSet(_SetCommand):
    _description = ('Delete snapshot sets: the image and every volume '
                    'snapshot of each set, and nothing else')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshot_sets', metavar='<set>', nargs='+',
                            help='Snapshot set(s) to delete (image ID)')
        return parser

    def through_service(self, parsed_args):
        self._delete_each(parsed_args, self.service.delete_set)

    def in_process(self, parsed_args):
        self._delete_each(parsed_args,
                          lambda set_id: sets.delete_set(self.clients,
                                                         set_id))

    @staticmethod
    def _delete_each(parsed_args, delete):
        failed = 0
        for set_id in parsed_args.snapshot_sets:
            try:
                delete(set_id)
            except (errors.SnapshotSetError,
                    service_client.ServiceError) as e:
                failed += 1
                LOG.error(str(e))
        if failed:
            raise exceptions.CommandError(
                '%d of %d snapshot sets failed to delete.'
                % (failed, len(parsed_args.snapshot_sets)))


class RestoreSnapshotSet(_Clients, _Following, command.ShowOne):
    _description = ('Restore drives of a snapshot set into its server, in '
                    'place: a safety set of the drives it replaces is taken '
                    'first (its undo), the server is stopped, each chosen '
                    'drive replaced, and the server started again if it '
                    'ran; replaced volumes are kept. With --as-new-volumes, '
                    'the drives become new volumes instead and nothing that '
                    'exists is touched')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshot_set', metavar='<set>',
                            help='Snapshot set (ID)')
        parser.add_argument(
            '--as-new-volumes', action='store_true',
            help='Make each drive a new volume of the project instead of '
                 'restoring the server in place')
        parser.add_argument(
            '--device', metavar='<device>', action='append', dest='devices',
            help='Drive of the set to restore, as vda or /dev/vdb (repeat '
                 'for more; default: every drive)')
        parser.add_argument(
            '--attach-to', metavar='<server>',
            help='With --as-new-volumes: attach the new volumes to this '
                 'server of the project (name or ID)')
        parser.add_argument(
            '--wait', action='store_true',
            help='Return only when the restore is done; without it, the '
                 'queued run is shown')
        return parser

    def take_action(self, parsed_args):
        attach_to = None
        if parsed_args.attach_to and not parsed_args.as_new_volumes:
            raise exceptions.CommandError(
                '--attach-to goes with --as-new-volumes: in place, the '
                'drives go back into the set\'s own server.')
        if parsed_args.attach_to:
            attach_to = utils.find_resource(self.clients.nova.servers,
                                            parsed_args.attach_to).id
        try:
            queued = self.service.restore_set(
                parsed_args.snapshot_set, devices=parsed_args.devices,
                attach_to=attach_to,
                in_place=not parsed_args.as_new_volumes)
        except service_client.ServiceError as e:
            raise exceptions.CommandError(str(e)) from e
        return self._shown(queued, parsed_args.wait)

    def _shown(self, queued, wait):
        if queued['action'] == 'restore-in-place':
            ended = self._follow(queued) if wait else queued
            if ended['state'] == 'failed':
                raise exceptions.CommandError(
                    'Run %s failed: %s' % (ended['id'], ended['error']))
            details = {'id': ended['id'], 'state': ended['state'],
                       'set_id': ended['set_id'],
                       'server_id': ended['server_id'],
                       'undo_set_id': ended['undo_set_id'] or '',
                       'devices': ', '.join(ended['devices']
                                            or ['every drive']),
                       'drives': '\n'.join('%s %s' % item for item in sorted(
                           ended['drives'].items()))}
            return tuple(zip(*sorted(details.items()), strict=True))
        if not wait:
            details = {'id': queued['id'], 'state': queued['state'],
                       'set_id': queued['set_id'],
                       'attach_to': queued['attach_to'] or '',
                       'devices': ', '.join(queued['devices']
                                            or ['every drive'])}
            return tuple(zip(*sorted(details.items()), strict=True))
        ended = self._follow(queued)
        if ended['state'] != 'succeeded':
            raise exceptions.CommandError(
                'Run %s failed: %s' % (ended['id'], ended['error']))
        return self._restored(ended)


    def _restored(self, ended):
        """The run and each new volume: the drive it holds, where it is
        attached."""
        lines = []
        for resource in ended['resources']:
            if resource['kind'] != 'volume':
                continue
            volume = self.clients.cinder.volumes.get(resource['id'])
            where = ', '.join('attached to %s as %s' % (
                a.get('server_id'), a.get('device'))
                for a in volume.attachments or [])
            lines.append('%s %s (%s)%s' % (
                (volume.metadata or {}).get(
                    properties.RESTORED_FROM, ' ?').split(' ', 1)[1],
                volume.id, volume.name, ', ' + where if where else ''))
        details = {'id': ended['id'], 'state': ended['state'],
                   'set_id': ended['set_id'], 'volumes': '\n'.join(lines)}
        return tuple(zip(*sorted(details.items()), strict=True))


class UndoRestore(RestoreSnapshotSet):
    _description = ('Undo a restore in place: its safety set restored in '
                    'place (itself after a safety set of its own, so an '
                    'undo can be undone too)')

    def get_parser(self, prog_name):
        parser = command.ShowOne.get_parser(self, prog_name)
        parser.add_argument('run', metavar='<run>',
                            help='The restore in place to undo (run ID)')
        parser.add_argument(
            '--wait', action='store_true',
            help='Return only when the undo is done; without it, the '
                 'queued run is shown')
        return parser

    def take_action(self, parsed_args):
        try:
            queued = self.service.undo_run(parsed_args.run)
        except service_client.ServiceError as e:
            raise exceptions.CommandError(str(e)) from e
        return self._shown(queued, parsed_args.wait)
