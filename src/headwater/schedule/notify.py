"""Webhook notifications: a JSON POST when a scheduled run fails (after its retries).

``headwater.toml``::

    [notify]
    url = "https://hooks.slack.com/services/${SLACK_WEBHOOK_PATH}"  # secrets from the env
    on = ["failure"]     # also "success"
    timeout = 10         # seconds per attempt
    retries = 3          # further attempts on a network error, HTTP 429 or 5xx

The payload is Slack-compatible (Mattermost, Teams workflows and most chat
webhooks accept it too)::

    {"text": "headwater shop: 1 node failed after 3 attempts (env prod, run 1a2b3c)\\n...",
     "headwater": {"project": "shop", "env": "prod", "run_id": "1a2b3c", "status": "failed",
                   "failed": [{"node": "vendor_feed", "attempts": 3, "error": "..."}],
                   "skipped": ["vendor_daily"]}}

``${VAR}`` is resolved when sending, never earlier; the URL is logged as
written in the config, without user-info or query, and every known secret is
masked in whatever is printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headwater.core.clock import Clock
from headwater.schedule.events import EventLog
from headwater.schedule.redact import Redactor, redact_url


@dataclass
class Notification:
    text: str
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "headwater": self.details}


class Notifier:
    """POSTs notifications to one webhook, retrying with backoff through ``clock``."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        log: EventLog,
        redactor: Redactor,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        events: tuple[str, ...] = ("failure",),
    ) -> None:
        self.url_template = url
        self.clock = clock
        self.log = log
        self.redactor = redactor
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.events = events

    @property
    def shown_url(self) -> str:
        return self.redactor.url(redact_url(self.url_template))

    def wants(self, event: str) -> bool:
        return event in self.events

    def send(self, note: Notification) -> bool:
        """Deliver ``note``; True once the webhook answered 2xx. Never raises."""
        import httpx

        from headwater.core.config import resolve_env
        from headwater.errors import HeadwaterError

        try:
            url = resolve_env(self.url_template, key="notify.url")
        except HeadwaterError as exc:
            self.log.emit("notify.failed", f"notification not sent: {exc.message}",
                          url=self.shown_url)
            return False
        self.redactor.add(url)
        payload = note.payload()
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.clock.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = httpx.post(url, json=payload, timeout=self.timeout)
            except httpx.HTTPError as exc:
                # httpx puts the URL into some messages: never print them raw
                error = f"{type(exc).__name__}: {self.redactor(str(exc))}"
                continue
            if 200 <= response.status_code < 300:
                self.log.emit("notify.sent", f"notified {self.shown_url}", url=self.shown_url,
                              status_code=response.status_code, attempts=attempt + 1)
                return True
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the webhook refuses this request: repeating it will not help
        self.log.emit("notify.failed", f"notification to {self.shown_url} failed: {error}",
                      url=self.shown_url, error=error)
        return False
