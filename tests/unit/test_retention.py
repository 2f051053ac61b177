"""Retention rules, with examples and with hypothesis's properties."""

import dataclasses
import datetime

import hypothesis
from hypothesis import strategies as st
import pytest

from snapshot_dashboard.orchestration import retention


@dataclasses.dataclass(frozen=True)
class Made:
    id: str
    created_at: datetime.datetime


START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def hourly(count, start=START):
    return [Made('s%03d' % i, start + datetime.timedelta(hours=i))
            for i in range(count)]


def kept(made, rules, tz='UTC'):
    deleted = {s.id for s in retention.to_delete(made, rules, tz)}
    return sorted(s.id for s in made if s.id not in deleted)


def test_keep_last_keeps_the_newest():
    assert kept(hourly(5), retention.Rules(keep_last=2)) == ['s003', 's004']


def test_keep_daily_keeps_the_newest_of_each_recent_day():
    made = hourly(72)  # three days, one set an hour
    assert kept(made, retention.Rules(keep_daily=2)) == ['s047', 's071']


def test_rules_add_up():
    made = hourly(24 * 40, start=datetime.datetime(
        2026, 1, 1, tzinfo=datetime.timezone.utc))
    result = kept(made, retention.Rules(keep_last=1, keep_daily=2,
                                        keep_weekly=2, keep_monthly=2))
    # Monday 9 Feb 23:00 is the newest (and its day's, week's, month's);
    # Sunday 8 Feb 23:00 is the day before's and the week before's; 31 Jan
    # 23:00 is January's.
    last = made[-1].created_at
    assert last == datetime.datetime(2026, 2, 9, 23, 0,
                                     tzinfo=datetime.timezone.utc)
    assert result == ['s743', 's935', 's959']


def test_days_are_the_schedules_days():
    # 23:30 UTC is already the next day in Paris.
    made = [Made('a', datetime.datetime(2026, 6, 1, 21, 0,
                                        tzinfo=datetime.timezone.utc)),
            Made('b', datetime.datetime(2026, 6, 1, 23, 30,
                                        tzinfo=datetime.timezone.utc))]
    assert kept(made, retention.Rules(keep_daily=2), 'UTC') == ['b']
    assert kept(made, retention.Rules(keep_daily=2),
                'Europe/Paris') == ['a', 'b']


def test_iso_strings_as_glance_gives_them():
    made = [Made('old', '2026-01-01T00:00:00Z'),
            Made('new', '2026-01-02T00:00:00Z')]
    assert kept(made, retention.Rules(keep_last=1)) == ['new']


@pytest.mark.parametrize('rules', [{}, {'keep_last': 0}, {'keep_daily': -1}])
def test_rules_that_keep_nothing_are_refused(rules):
    with pytest.raises(ValueError):
        retention.Rules(**rules)


def test_describe():
    assert retention.Rules(keep_last=1, keep_weekly=4).describe() == \
        'keep the last set, 4 weekly'


# -- properties ---------------------------------------------------------------

times = st.datetimes(min_value=datetime.datetime(2025, 1, 1),
                     max_value=datetime.datetime(2027, 1, 1),
                     timezones=st.just(datetime.timezone.utc))
set_lists = st.lists(times, min_size=0, max_size=40, unique=True).map(
    lambda ts: [Made('s%02d' % i, t) for i, t in enumerate(ts)])
zones = st.sampled_from(['UTC', 'Europe/Paris', 'America/New_York',
                         'Asia/Kolkata'])


@hypothesis.given(set_lists, st.data(), zones)
def test_never_deletes_the_newest(made, data, zone):
    rules = data.draw(valid_rules())
    deleted = retention.to_delete(made, rules, zone)
    if made:
        newest = max(made, key=lambda s: s.created_at)
        assert newest not in deleted


@hypothesis.given(set_lists, st.data(), zones)
def test_the_order_sets_come_in_does_not_matter(made, data, zone):
    rules = data.draw(valid_rules())
    shuffled = data.draw(st.permutations(made))
    assert retention.to_delete(made, rules, zone) == \
        retention.to_delete(shuffled, rules, zone)


@hypothesis.given(set_lists, st.data(), zones)
def test_keeps_at_least_what_keep_last_asks(made, data, zone):
    rules = data.draw(valid_rules())
    deleted = retention.to_delete(made, rules, zone)
    assert len(made) - len(deleted) >= min(len(made),
                                           max(rules.keep_last, 1))
    assert set(deleted) <= set(made)


@hypothesis.given(set_lists, st.data())
def test_never_deletes_a_set_of_another_schedule_or_made_by_hand(made, data):
    rules = data.draw(valid_rules())
    owners = data.draw(st.lists(st.sampled_from(['A', 'B', None]),
                                min_size=len(made), max_size=len(made)))
    tagged = [Scheduled(s.id, s.created_at, owner)
              for s, owner in zip(made, owners, strict=True)]
    deleted = retention.schedule_sets_to_delete(tagged, 'A', rules)
    assert all(s.schedule_id == 'A' for s in deleted)
    mine = [s for s in tagged if s.schedule_id == 'A']
    if mine:
        assert max(mine, key=lambda s: s.created_at) not in deleted


@dataclasses.dataclass(frozen=True)
class Scheduled:
    id: str
    created_at: datetime.datetime
    schedule_id: str | None


def valid_rules():
    return st.builds(
        dict, keep_last=st.integers(0, 5), keep_daily=st.integers(0, 5),
        keep_weekly=st.integers(0, 5), keep_monthly=st.integers(0, 5)
    ).filter(lambda r: any(r.values())).map(lambda r: retention.Rules(**r))
