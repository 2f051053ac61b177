"""Retention: which of a schedule's sets to delete (grandfather-father-son).

Pure: sets in, sets to delete out, so the rules are tested without a cloud.
The rules are the ones backup tools use (restic's ``forget``, borg's
``prune``): ``keep_last`` keeps the N newest sets; ``keep_daily`` keeps the
newest set of each of the N most recent days that have a set, and so on for
weeks (ISO weeks) and months, in the schedule's timezone. A set kept by any
rule is kept. Only sets the schedule made are considered (the caller passes
those), the newest is always kept, and the order the sets come in does not
change the result.
"""

import dataclasses
import datetime
import zoneinfo


@dataclasses.dataclass(frozen=True)
class Rules:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    def __post_init__(self):
        for name in ('keep_last', 'keep_daily', 'keep_weekly',
                     'keep_monthly'):
            if getattr(self, name) < 0:
                raise ValueError('%s cannot be negative' % name)
        if not any(dataclasses.astuple(self)):
            raise ValueError('At least one retention rule must keep a set.')

    def describe(self):
        parts = []
        for count, one, many in (
                (self.keep_last, 'the last set', 'the last %d sets'),
                (self.keep_daily, '1 daily', '%d daily'),
                (self.keep_weekly, '1 weekly', '%d weekly'),
                (self.keep_monthly, '1 monthly', '%d monthly')):
            if count:
                parts.append(one if count == 1 else many % count)
        return 'keep ' + ', '.join(parts)


PERIODS = (
    ('keep_daily', lambda t: t.date()),
    ('keep_weekly', lambda t: t.isocalendar()[:2]),
    ('keep_monthly', lambda t: (t.year, t.month)),
)


def to_delete(snapshot_sets, rules, timezone='UTC',
              created=lambda s: s.created_at):
    """The sets ``rules`` do not keep, oldest first.

    ``created(set)`` is the set's creation time, an aware datetime or an
    ISO 8601 string.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    dated = sorted(((_when(created(s)).astimezone(zone), _key(s), s)
                    for s in snapshot_sets), key=lambda item: item[:2],
                   reverse=True)
    keep = set()
    if dated:
        keep.add(dated[0][1])  # the newest, whatever the rules say
    keep.update(key for _, key, _ in dated[:rules.keep_last])
    for rule, period in PERIODS:
        wanted = getattr(rules, rule)
        seen = []
        for when, key, _ in dated:
            bucket = period(when)
            if bucket in seen:
                continue
            if len(seen) == wanted:
                break
            seen.append(bucket)
            keep.add(key)
    return [s for when, key, s in reversed(dated) if key not in keep]


@dataclasses.dataclass(frozen=True)
class UpcomingSet:
    """The set a schedule will take next, counted as its newest."""

    created_at: datetime.datetime
    id: str = '(next set)'
    schedule_id: str | None = None


def schedule_sets_to_delete(snapshot_sets, schedule_id, rules,
                            timezone='UTC', upcoming_at=None):
    """The sets of schedule ``schedule_id`` that ``rules`` do not keep.
    Sets taken by hand, or by another schedule, are never among them.

    With ``upcoming_at`` (an aware datetime), the sets the rules will not
    keep once the schedule's next set is taken then: what the schedule's
    page shows will go after its next run.
    """
    mine = [s for s in snapshot_sets
            if schedule_id and getattr(s, 'schedule_id', None) == schedule_id]
    if upcoming_at is not None:
        mine.append(UpcomingSet(created_at=upcoming_at,
                                schedule_id=schedule_id))
    return [s for s in to_delete(mine, rules, timezone)
            if not isinstance(s, UpcomingSet)]


def _when(value):
    if isinstance(value, datetime.datetime):
        when = value
    else:
        when = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when


def _key(snapshot_set):
    return getattr(snapshot_set, 'id', snapshot_set)
