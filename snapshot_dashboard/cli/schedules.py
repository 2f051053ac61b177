"""``openstack server snapshot schedule create|list|show|set|delete``:
backup schedules, through the REST API of snapshot sets (the same
schedules as Horizon's Backup Schedules page)."""

from osc_lib import exceptions
from osc_lib import utils
from osc_lib.command import command

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import timing
from snapshot_dashboard.orchestration import window as window_module

LIST_COLUMNS = ('ID', 'Name', 'Server', 'Timing', 'Retention', 'Enabled',
                'Next Run')
KEEP_OPTIONS = ('keep_last', 'keep_daily', 'keep_weekly', 'keep_monthly')
SHOWN = ('id', 'name', 'server_id', 'server_name', 'devices', 'consistency',
         'timing_description', 'cron', 'timezone', 'name_template',
         'retention_description', 'enabled', 'broken_reason', 'next_run_at',
         'last_fired_at', 'user_name', 'created_at')


def _details(schedule):
    shown = {key: schedule.get(key) for key in SHOWN}
    shown['devices'] = ', '.join(schedule['devices'] or ['every drive'])
    return tuple(zip(*sorted(shown.items()), strict=True))


class _ScheduleCommand(command.Command):
    @property
    def service(self):
        return self.app.client_manager.snapshot_sets.service

    def take_action(self, parsed_args):
        try:
            return self.act(parsed_args)
        except service_client.ServiceError as e:
            raise exceptions.CommandError(str(e)) from e


def _add_spec_options(parser, creating):
    """The options create and set share; set changes only those given."""
    parser.add_argument(
        '--device', metavar='<device>', action='append', dest='devices',
        help='Drive to capture at each run (repeat for more; default: every '
             'drive, drives attached later included)')
    if not creating:
        parser.add_argument('--all-devices', action='store_true',
                            help='Capture every drive at each run again')
    parser.add_argument('--consistency', choices=window_module.LEVELS,
                        default=window_module.AUTO if creating else None)
    parser.add_argument(
        '--timing', choices=timing.KINDS,
        help='hourly (at --minute), daily (at --hour:--minute, the default '
             'of create), weekly (on --weekday), or cron (--cron alone '
             'implies it)')
    parser.add_argument('--minute', type=int, metavar='<0-59>')
    parser.add_argument('--hour', type=int, metavar='<0-23>')
    parser.add_argument('--weekday', type=int, metavar='<0-6>',
                        help='0 is Sunday')
    parser.add_argument('--cron', metavar='<expression>',
                        help='Five fields: minute hour day month weekday')
    parser.add_argument('--timezone', metavar='<zone>',
                        default='UTC' if creating else None,
                        help='The timing\'s timezone, as Europe/Paris')
    parser.add_argument('--name-template', metavar='<template>',
                        help='Set names: {server}, {schedule} and {time} '
                             'are replaced')
    for option in KEEP_OPTIONS:
        parser.add_argument('--' + option.replace('_', '-'), type=int,
                            dest=option, metavar='<count>')


def _spec(parsed_args, creating=False):
    if parsed_args.timing is None and parsed_args.cron:
        parsed_args.timing = timing.CRON
    elif parsed_args.timing is None and creating:
        parsed_args.timing = timing.DAILY
    fields = {name: getattr(parsed_args, name) for name in (
        'consistency', 'timing', 'minute', 'hour', 'weekday', 'cron',
        'timezone', 'name_template') + KEEP_OPTIONS}
    fields = {k: v for k, v in fields.items() if v is not None}
    if parsed_args.devices:
        fields['devices'] = parsed_args.devices
    elif getattr(parsed_args, 'all_devices', False):
        fields['devices'] = None
    return fields


class CreateSchedule(_ScheduleCommand, command.ShowOne):
    _description = ('Take snapshot sets of a server on a timing, keeping '
                    'some by retention rules')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('server', metavar='<server>',
                            help='Server (name or ID)')
        parser.add_argument('--name', metavar='<name>', required=True,
                            help='Name of the schedule')
        _add_spec_options(parser, creating=True)
        return parser

    def act(self, parsed_args):
        server = utils.find_resource(
            self.app.client_manager.snapshot_sets.clients.nova.servers,
            parsed_args.server)
        return _details(self.service.create_schedule(
            name=parsed_args.name, server_id=server.id,
            **_spec(parsed_args, creating=True)))


class ListSchedule(_ScheduleCommand, command.Lister):
    _description = "List the project's backup schedules"

    def act(self, parsed_args):
        return LIST_COLUMNS, [
            (s['id'], s['name'], s['server_name'] or s['server_id'],
             s['timing_description'], s['retention_description'],
             s['enabled'], s['next_run_at'] or '')
            for s in self.service.list_schedules()]


class ShowSchedule(_ScheduleCommand, command.ShowOne):
    _description = 'Show a backup schedule'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('schedule', metavar='<schedule>',
                            help='Schedule (ID)')
        return parser

    def act(self, parsed_args):
        return _details(self.service.get_schedule(parsed_args.schedule))


class SetSchedule(_ScheduleCommand):
    _description = 'Change, pause or resume a backup schedule'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('schedule', metavar='<schedule>',
                            help='Schedule (ID)')
        parser.add_argument('--name', metavar='<name>')
        state = parser.add_mutually_exclusive_group()
        state.add_argument('--pause', action='store_true',
                           help='Stop firing until resumed')
        state.add_argument('--resume', action='store_true',
                           help='Fire again')
        _add_spec_options(parser, creating=False)
        return parser

    def act(self, parsed_args):
        fields = _spec(parsed_args)
        if parsed_args.name:
            fields['name'] = parsed_args.name
        if fields:
            self.service.update_schedule(parsed_args.schedule, **fields)
        if parsed_args.pause:
            self.service.pause_schedule(parsed_args.schedule)
        if parsed_args.resume:
            self.service.resume_schedule(parsed_args.schedule)


class DeleteSchedule(_ScheduleCommand):
    _description = 'Delete backup schedules (the sets they made stay)'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('schedules', metavar='<schedule>', nargs='+',
                            help='Schedule(s) to delete (ID)')
        return parser

    def act(self, parsed_args):
        for schedule_id in parsed_args.schedules:
            self.service.delete_schedule(schedule_id)
