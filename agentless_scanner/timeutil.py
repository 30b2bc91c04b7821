"""Timestamps in the scan log: ISO 8601, UTC, with a ``Z`` suffix."""

import datetime
import time


def iso_utc(epoch=None, millis=False):
    """``2026-11-25T16:30:00Z`` (or ``...00.123Z`` with ``millis``) for a POSIX time."""
    if epoch is None:
        epoch = time.time()
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
