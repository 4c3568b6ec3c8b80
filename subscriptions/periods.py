"""Billing dates: when the period after a given one starts."""

import calendar
from datetime import datetime, timedelta

from subscriptions.models import Plan
from subscriptions.states import BillingInterval


def next_period_start(start: datetime, *, plan: Plan, started_at: datetime) -> datetime:
    """The start of the period after the one starting at `start`.

    Monthly plans keep the day of the month they started on where the month has it: a plan
    started on the 31st bills on Feb 28 and then on Mar 31 again, never drifting. A period that
    starts on another day (billing resumed after a pause) keeps its own day from then on.
    """
    if plan.interval == BillingInterval.WEEK:
        return start + timedelta(weeks=plan.interval_count)
    return add_months(start, plan.interval_count, day=_billing_day(start, started_at=started_at))


def add_months(moment: datetime, months: int, *, day: int) -> datetime:
    """`moment` moved by whole months, on `day` or the month's last day if it is shorter."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(day, _days_in(year, month)))


def _billing_day(start: datetime, *, started_at: datetime) -> int:
    preferred = started_at.day
    on_schedule = start.day == min(preferred, _days_in(start.year, start.month))
    return preferred if on_schedule else start.day


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]
