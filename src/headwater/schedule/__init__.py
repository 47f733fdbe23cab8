"""Scheduling: cron schedules, source availability windows, new-data sensors, retries, webhooks.

The pieces are pure and small; :mod:`headwater.schedule.scheduler` puts them together
into ``headwater schedule``.

=============  ==============================================================
``cron``       cron expressions in a time zone (cronsim, Debian cron's DST rules)
``windows``    ``window_status("02:00-05:00", "America/Los_Angeles", now)``
``deferral``   which selected nodes wait for a closed source
``events``     the scheduler's log, text or JSON lines
``notify``     the webhook POST (Slack-compatible ``{"text": ...}``)
``redact``     secrets out of logs and notifications
``ledger``     what the scheduler remembers between restarts
=============  ==============================================================

The TOML
--------

``headwater.toml``::

    timezone = "America/Los_Angeles"   # default zone of schedules and windows (default UTC)

    [[schedules]]                      # one table per schedule
    name = "hourly"                    # optional; names it in logs and notifications
    cron = "5 * * * *"                 # minute hour day-of-month month day-of-week, or @daily
    select = "tag:hourly"              # optional, same syntax as --select (default: everything)
    # exclude = "kind:sink"            # optional, same syntax as --exclude
    # timezone = "Europe/Berlin"       # optional, overrides the project's
    # on_overlap = "skip"              # "wait" (default) or "skip" when a run is in progress
    # full_refresh = false
    # retries = 3                      # override the project's for this schedule
    # retry_delay = "2m"

    [[schedules]]
    name = "nightly"
    cron = "0 2 * * *"

    retries = 2          # re-run a failed node (and its downstream) up to 2 more times
    retry_delay = 60     # seconds (or "1m") before the first retry; doubles each time

    [node_retries.vendor_feed]         # one node's own policy
    retries = 5
    retry_delay = "5m"

    [notify]
    url = "https://hooks.slack.com/services/${SLACK_WEBHOOK_PATH}"  # secrets from the env
    on = ["failure"]     # and/or "success"
    # timeout = 10       # seconds per attempt
    # retries = 3        # further attempts on a network error, 429 or 5xx

A source, ``sources/vendor_feed.toml``::

    type = "files"
    path = "/mnt/vendor/*.csv"
    window = "02:00-05:00"                   # only read between 02:00 and 05:00 ...
    window_timezone = "America/Los_Angeles"  # ... Los Angeles time (default: project timezone)
    trigger = "new_data"                     # also run it (and its downstream) on new files
    poll_interval = 300                      # seconds (or "5m") between polls; default 60

Outside its window a source is not touched (not even listed) and the nodes that
need it are deferred, with their previous data staying live; the scheduler runs
them as soon as the window opens. Windows across midnight (``"22:00-02:00"``)
work, and DST changes are handled (see :mod:`headwater.core.windows`).
None of the scheduling keys count in a source's fingerprint: changing a window
rebuilds nothing.
"""
