"""Policy in code (oslo.policy), with Keystone's default roles: a reader
of a project sees its runs, sets and schedules; a member also takes sets,
deletes them and manages schedules; an admin may do so in any project.

``oslopolicy-sample-generator --namespace snapshot_dashboard.api`` writes
the sample an operator overrides in ``policy.yaml``.
"""

from oslo_policy import policy

PREFIX = 'snapshot_sets:'
ADMIN = 'role:admin'
PROJECT_READER = 'role:reader and project_id:%(project_id)s'
PROJECT_MEMBER = 'role:member and project_id:%(project_id)s'

base_rules = [
    policy.RuleDefault('admin', ADMIN, 'An administrator of the cloud.'),
    policy.RuleDefault('project_reader', PROJECT_READER,
                       'A reader (or more) of the object\'s project.'),
    policy.RuleDefault('project_member', PROJECT_MEMBER,
                       'A member (or more) of the object\'s project.'),
    policy.RuleDefault('project_reader_or_admin',
                       'rule:project_reader or rule:admin'),
    policy.RuleDefault('project_member_or_admin',
                       'rule:project_member or rule:admin'),
]


def _rule(name, check, description, method, path):
    return policy.DocumentedRuleDefault(
        name=PREFIX + name, check_str=check, description=description,
        operations=[{'method': method, 'path': path}],
        scope_types=['project'])


READER = 'rule:project_reader_or_admin'
MEMBER = 'rule:project_member_or_admin'

RUN_CREATE = PREFIX + 'run:create'
RUN_GET = PREFIX + 'run:get'
RUN_LIST = PREFIX + 'run:list'
SET_GET = PREFIX + 'set:get'
SET_LIST = PREFIX + 'set:list'
SET_DELETE = PREFIX + 'set:delete'
SET_RESTORE = PREFIX + 'set:restore'
RUN_UNDO = PREFIX + 'run:undo'
SCHEDULE_CREATE = PREFIX + 'schedule:create'
SCHEDULE_GET = PREFIX + 'schedule:get'
SCHEDULE_LIST = PREFIX + 'schedule:list'
SCHEDULE_UPDATE = PREFIX + 'schedule:update'
SCHEDULE_DELETE = PREFIX + 'schedule:delete'
SCHEDULE_RUN = PREFIX + 'schedule:run'
REAPED_LIST = PREFIX + 'reaped:list'

rules = [
    _rule('run:create', MEMBER, 'Take a snapshot set: queue a run, which '
          'holds the server\'s guest still while its drives are captured.',
          'POST', '/v1/runs'),
    _rule('run:get', READER, 'Show a run and its progress.', 'GET',
          '/v1/runs/{run_id}'),
    _rule('run:list', READER, 'List the project\'s runs.', 'GET',
          '/v1/runs'),
    _rule('set:get', READER, 'Show a snapshot set.', 'GET',
          '/v1/sets/{set_id}'),
    _rule('set:list', READER, 'List the project\'s snapshot sets.', 'GET',
          '/v1/sets'),
    _rule('set:delete', MEMBER, 'Delete a snapshot set: its image and its '
          'volume snapshots.', 'DELETE', '/v1/sets/{set_id}'),
    _rule('set:restore', MEMBER, 'Restore drives of a snapshot set (queue '
          'a run): as new volumes of the project, optionally attached to a '
          'server of the project, or in place into the set\'s server '
          '(stopped, its replaced drives kept in a safety set).', 'POST',
          '/v1/sets/{set_id}/restore'),
    _rule('run:undo', MEMBER, 'Undo a restore in place: restore its safety '
          'set in place (queue a run).', 'POST', '/v1/runs/{run_id}/undo'),
    _rule('schedule:create', MEMBER, 'Create a backup schedule.', 'POST',
          '/v1/schedules'),
    _rule('schedule:get', READER, 'Show a backup schedule.', 'GET',
          '/v1/schedules/{schedule_id}'),
    _rule('schedule:list', READER, 'List the project\'s backup schedules.',
          'GET', '/v1/schedules'),
    _rule('schedule:update', MEMBER, 'Change, pause or resume a backup '
          'schedule.', 'PUT', '/v1/schedules/{schedule_id}'),
    _rule('schedule:delete', MEMBER, 'Delete a backup schedule (its sets '
          'stay).', 'DELETE', '/v1/schedules/{schedule_id}'),
    _rule('schedule:run', MEMBER, 'Run a backup schedule now.', 'POST',
          '/v1/schedules/{schedule_id}/run'),
    _rule('reaped:list', 'rule:admin', 'List what the reaper deleted, in '
          'every project: volume snapshots and images left by runs that '
          'died.', 'GET', '/v1/reaped'),
]


def list_rules():
    """For oslo.policy's tools (namespace snapshot_dashboard.api)."""
    return base_rules + rules


def enforcer(conf):
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(list_rules())
    return enforcer
