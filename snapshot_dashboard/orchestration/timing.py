"""When a backup schedule fires: a cron expression in the user's timezone.

The simple choices (hourly, daily at HH:MM, weekly on a day at HH:MM)
become cron expressions; cronsim (maintained, DST-aware) parses them and
computes the next fire. No hand-written cron parsing.
"""

import datetime
import zoneinfo

import cronsim

HOURLY = 'hourly'
DAILY = 'daily'
WEEKLY = 'weekly'
CRON = 'cron'
KINDS = (HOURLY, DAILY, WEEKLY, CRON)
DAYS = ('Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday',
        'Saturday')  # cron's day numbers, 0 to 6


class TimingError(ValueError):
    """A timing that cannot be used; the message says why."""


def cron_for(kind, minute=0, hour=0, weekday=0, expression=''):
    """The cron expression of a timing choice."""
    if kind == HOURLY:
        return '%d * * * *' % minute
    if kind == DAILY:
        return '%d %d * * *' % (minute, hour)
    if kind == WEEKLY:
        return '%d %d * * %d' % (minute, hour, weekday)
    if kind == CRON:
        return ' '.join(expression.split())
    raise TimingError('Unknown timing %r.' % kind)


def zone(timezone):
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TimingError('Unknown timezone %r.' % timezone) from None


def fires(expression, timezone, after):
    """The fire times after ``after`` (aware), as aware UTC datetimes."""
    local = after.astimezone(zone(timezone))
    try:
        times = cronsim.CronSim(expression, local)
    except cronsim.CronSimError as e:
        raise TimingError('Not a valid cron expression (%s): %s.'
                          % (expression, e)) from None
    for when in times:
        yield when.astimezone(datetime.timezone.utc)


def next_fire(expression, timezone, after):
    return next(fires(expression, timezone, after))


def check(expression, timezone, min_interval_s, now, sample=48):
    """Refuse a malformed expression, and one firing more often than the
    operator allows (looked at over its next ``sample`` fires)."""
    times = fires(expression, timezone, now)
    try:
        previous = next(times)
        for _ in range(sample):
            when = next(times)
            if (when - previous).total_seconds() < min_interval_s:
                raise TimingError(
                    'This timing fires every %s; the shortest interval '
                    'allowed here is %s.' % (
                        _duration((when - previous).total_seconds()),
                        _duration(min_interval_s)))
            previous = when
    except StopIteration:
        raise TimingError('This cron expression never fires.') from None


def describe(kind, expression, timezone, minute=0, hour=0, weekday=0):
    """The timing in words."""
    if kind == HOURLY:
        text = 'Every hour at :%02d' % minute
    elif kind == DAILY:
        text = 'Every day at %02d:%02d' % (hour, minute)
    elif kind == WEEKLY:
        text = 'Every %s at %02d:%02d' % (DAYS[weekday], hour, minute)
    else:
        try:
            text = cronsim.CronSim(expression, datetime.datetime.now(
                datetime.timezone.utc)).explain()
        except Exception:
            text = 'cron %s' % expression
    return '%s (%s)' % (text, timezone)


def _duration(seconds):
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return '%d h' % (seconds // 3600)
    if seconds % 60 == 0:
        return '%d min' % (seconds // 60)
    return '%d s' % seconds
