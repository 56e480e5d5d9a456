"""Alarm delivery: the log, e-mail over SMTP and a Slack-compatible webhook, from a thread of its own.

What goes out is decided by the alarm states (`AlarmBook.due`): a new alarm at once (the QC step
wakes the thread), an active one again at each batch interval, at most `max_resends` times; an
acknowledged or muted alarm not at all. Everything due at one moment goes out as one message per
channel (a batch), each alarm once. A channel that fails is retried with a doubling back-off and
logged (`DeliveryCounters`); it never raises out of the thread, so the QC service never waits on a
mail server. Default: the log only (no SMTP host, no webhook URL).
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from pipeline.qc.alarm_book import AlarmBook, histogram_label
from pipeline.qc.results import write_json_atomically

log = logging.getLogger(__name__)


class DeliveryConfigError(ValueError):
    """A bad delivery setting; `field` names it (the `Settings` field, e.g. `alarm_smtp_port`)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class DeliveryConfig:
    smtp_host: str = ""  # empty: no e-mail
    smtp_port: int = 25
    email_from: str = "overwatch@localhost"
    email_to: tuple[str, ...] = ()
    webhook_url: str = ""  # empty: no webhook
    batch_interval_s: float = 300.0
    max_resends: int = 3
    attempts: int = 4  # per channel and batch, with a doubling back-off between them
    retry_initial_s: float = 1.0
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.smtp_port < 65536:
            raise DeliveryConfigError("alarm_smtp_port", f"must be 1-65535, got {self.smtp_port}")
        if self.smtp_host and not self.email_to:
            raise DeliveryConfigError(
                "alarm_email_to", "give at least one address when alarm_smtp_host is set"
            )
        for address in (self.email_from, *self.email_to):
            if "@" not in address:
                raise DeliveryConfigError(
                    "alarm_email_to" if address in self.email_to else "alarm_email_from",
                    f"not an e-mail address: {address!r}",
                )
        if self.webhook_url and urllib.parse.urlparse(self.webhook_url).scheme not in ("http", "https"):
            raise DeliveryConfigError(
                "alarm_webhook_url", f"must be an http(s) URL, got {self.webhook_url!r}"
            )
        if not self.batch_interval_s > 0:
            raise DeliveryConfigError("alarm_batch_interval_s", f"must be > 0, got {self.batch_interval_s}")
        if self.max_resends < 0:
            raise DeliveryConfigError("alarm_max_resends", f"must be >= 0, got {self.max_resends}")
        if self.attempts < 1 or not self.retry_initial_s >= 0 or not self.timeout_s > 0:
            raise DeliveryConfigError("attempts", "needs attempts >= 1, retry_initial_s >= 0, timeout_s > 0")

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryConfig:
        return cls(
            smtp_host=settings.alarm_smtp_host,
            smtp_port=settings.alarm_smtp_port,
            email_from=settings.alarm_email_from,
            email_to=tuple(settings.alarm_email_to),
            webhook_url=settings.alarm_webhook_url,
            batch_interval_s=settings.alarm_batch_interval_s,
            max_resends=settings.alarm_max_resends,
        )


@dataclass(frozen=True)
class Batch:
    """What one delivery sends: the alarms due now, each once."""

    alarms: tuple[dict[str, Any], ...]
    max_resends: int

    @property
    def subject(self) -> str:
        first = self.alarms[0]
        more = f" and {len(self.alarms) - 1} more" if len(self.alarms) > 1 else ""
        return f"[overwatch] {first['subsystem']} {first['alarm']} on {histogram_label(first)}{more}"

    def lines(self) -> list[str]:
        lines = []
        for alarm in self.alarms:
            sent = int(alarm["notifications_sent"])
            again = f" (reminder {sent}/{self.max_resends})" if sent else ""
            # People read these: the histogram's display name (the raw one is in the alarm's record).
            lines.append(
                f"[{alarm['severity'].upper()}] {alarm['subsystem']} run {alarm['run']} {alarm['alarm']} on "
                f"{histogram_label(alarm)}: {alarm['message']}; "
                f"fired {alarm['fired_utc']:%Y-%m-%d %H:%M:%S} UTC{again} [id {alarm['alarm_id']}]"
            )
        return lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines())


class Channel(Protocol):
    name: str

    def send(self, batch: Batch) -> None:
        """Deliver the batch; raise on failure."""


class LogChannel:
    name = "log"

    def send(self, batch: Batch) -> None:
        for line in batch.lines():
            log.warning("ALARM %s", line)


class EmailChannel:
    name = "email"

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config

    def send(self, batch: Batch) -> None:
        message = EmailMessage()
        message["Subject"] = batch.subject
        message["From"] = self.config.email_from
        message["To"] = ", ".join(self.config.email_to)
        message.set_content(batch.text + "\n")
        with smtplib.SMTP(
            self.config.smtp_host, self.config.smtp_port, timeout=self.config.timeout_s
        ) as smtp:
            smtp.send_message(message)


class WebhookChannel:
    """A JSON POST with a `text` field: what Slack (and Mattermost, Teams' Slack mode...) accept."""

    name = "webhook"

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config

    def send(self, batch: Batch) -> None:
        body = json.dumps({"text": f"*{batch.subject}*\n{batch.text}"}).encode()
        request = urllib.request.Request(
            self.config.webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
            response.read()


def channels_for(config: DeliveryConfig) -> list[Channel]:
    channels: list[Channel] = [LogChannel()]
    if config.smtp_host:
        channels.append(EmailChannel(config))
    if config.webhook_url:
        channels.append(WebhookChannel(config))
    return channels


@dataclass
class DeliveryCounters:
    batches: int = 0
    alarms_sent: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # channel -> batches it failed to deliver
    retries: int = 0
    last_error: str = ""


class Deliverer:
    """Sends due alarms from its own thread: at once when woken (new alarms), and at every batch
    interval (re-sends). `deliver_due` does one round synchronously (tests, `--rebuild`-free runs)."""

    def __init__(
        self,
        book: AlarmBook,
        config: DeliveryConfig,
        channels: Sequence[Channel] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.book = book
        self.config = config
        self.channels = list(channels) if channels is not None else channels_for(config)
        self.clock = clock
        self.counters = DeliveryCounters()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Deliverer:
        self._thread = threading.Thread(target=self._run, name="alarm-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wake(self, *_: Any) -> None:
        """New alarms fired: send them now (never blocks; usable as `AlarmConsumer.on_events`)."""
        self._wake.set()

    def _run(self) -> None:
        next_tick = time.monotonic() + self.config.batch_interval_s
        while not self._stop.is_set():
            self._wake.wait(timeout=max(0.0, next_tick - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            tick = time.monotonic() >= next_tick
            if tick:
                next_tick = time.monotonic() + self.config.batch_interval_s
            try:
                self.deliver_due(include_resends=tick)
            except Exception as error:  # e.g. the alarm file unreadable for a moment: next round
                self.counters.last_error = f"{type(error).__name__}: {error}"
                log.exception("alarm delivery round failed")

    def write_status(self) -> None:
        """The counters in `DIR/qc/alarms/delivery.json`, for the status panel (never raises)."""
        status = {**asdict(self.counters), "written_utc": self.clock().isoformat()}
        try:
            write_json_atomically(self.book.root / "delivery.json", status)
        except OSError:
            log.warning("cannot write the delivery status", exc_info=True)

    def deliver_due(self, include_resends: bool = True) -> Batch | None:
        """Send what is due now as one batch per channel; returns the batch (None if nothing was due).
        Re-sends only with `include_resends` (the batch-interval tick), at most one per half interval."""
        now = self.clock()
        resend_after = self.config.batch_interval_s / 2 if include_resends else float("inf")
        due = self.book.due(now, resend_after, self.config.max_resends)
        if not due:
            return None
        batch = Batch(tuple(due), self.config.max_resends)
        for channel in self.channels:
            self._send_with_retries(channel, batch)
        self.book.mark_notified([alarm["alarm_id"] for alarm in due], now)
        self.counters.batches += 1
        self.counters.alarms_sent += len(due)
        self.write_status()
        return batch

    def _send_with_retries(self, channel: Channel, batch: Batch) -> bool:
        delay = self.config.retry_initial_s
        for attempt in range(1, self.config.attempts + 1):
            try:
                channel.send(batch)
                return True
            except Exception as error:
                self.counters.last_error = f"{channel.name}: {type(error).__name__}: {error}"
                if attempt == self.config.attempts:
                    self.counters.failures[channel.name] = self.counters.failures.get(channel.name, 0) + 1
                    log.error(
                        "alarm delivery by %s failed %d times, giving up on this batch: %s",
                        channel.name,
                        attempt,
                        error,
                    )
                    return False
                self.counters.retries += 1
                log.warning("alarm delivery by %s failed (%s); retrying in %g s", channel.name, error, delay)
                if self._stop.wait(delay):
                    return False
                delay *= 2
        return False
