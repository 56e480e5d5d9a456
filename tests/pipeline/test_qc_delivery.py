"""Delivery to a local SMTP server (aiosmtpd) and a local HTTP server: one message per batch, muted
alarms send nothing, acknowledged ones stop re-sends, a failing endpoint is retried and stops nothing."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.delivery import (
    Deliverer,
    DeliveryConfig,
    DeliveryConfigError,
    EmailChannel,
    LogChannel,
    WebhookChannel,
)
from pipeline.settings import Settings
from tests.pipeline.qc_servers import HTTPRecorder, SMTPRecorder, wait_for
from tests.pipeline.test_qc_alarm_book import HISTS, step


def config(smtp: SMTPRecorder | None, http: HTTPRecorder | None, **overrides) -> DeliveryConfig:
    values = dict(
        smtp_host="127.0.0.1" if smtp else "",
        smtp_port=smtp.port if smtp else 25,
        email_to=("shift@example.org",) if smtp else (),
        webhook_url=http.url if http else "",
        batch_interval_s=60.0,
        max_resends=1,
        retry_initial_s=0.01,
        timeout_s=5.0,
    )
    values.update(overrides)
    return DeliveryConfig(**values)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_one_message_per_batch_then_limited_resends(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 7)  # two alarms fire at the same snapshot
    clock = Clock()
    with SMTPRecorder() as smtp, HTTPRecorder() as http:
        deliverer = Deliverer(book, config(smtp, http), clock=clock)
        batch = deliverer.deliver_due(include_resends=False)
        assert len(batch.alarms) == 2
        assert len(smtp.messages) == 1 and len(http.bodies) == 1
        mail = smtp.messages[0]
        assert mail["To"] == "shift@example.org"
        assert mail["Subject"] == f"[overwatch] EMC hot on {HISTS[0]} and 1 more"
        text = mail.get_content()
        assert text.count("[ERROR] EMC run 100 hot on") == 2 and "6 outside [0, 4]" in text
        assert "7 outside [0, 4]" in http.bodies[0]["text"]
        # Nothing new: nothing sent, even when woken again.
        assert deliverer.deliver_due(include_resends=False) is None
        # The batch interval later, one reminder batch; then the limit (1 re-send) is reached.
        clock.now += timedelta(seconds=60)
        assert len(deliverer.deliver_due(include_resends=True).alarms) == 2
        clock.now += timedelta(seconds=60)
        assert deliverer.deliver_due(include_resends=True) is None
        assert len(smtp.messages) == 2 and len(http.bodies) == 2
        assert "reminder 1/1" in smtp.messages[1].get_content()
    assert set(book.alarms()["notifications_sent"]) == {2}


def test_muted_alarms_send_nothing_and_acknowledged_stop_resends(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 7)
    first, second = book.alarms().sort_values("histogram")["alarm_id"]
    book.mute(first, datetime.now(UTC) + timedelta(hours=1), who="expert")
    clock = Clock()
    with SMTPRecorder() as smtp, HTTPRecorder() as http:
        deliverer = Deliverer(book, config(smtp, http, max_resends=3), clock=clock)
        batch = deliverer.deliver_due()
        assert [a["alarm_id"] for a in batch.alarms] == [second]
        book.acknowledge(second, who="shifter")
        clock.now += timedelta(minutes=5)
        assert deliverer.deliver_due() is None
        assert len(smtp.messages) == 1 and len(http.bodies) == 1
        assert first not in smtp.messages[0].get_content()


def test_a_failing_endpoint_is_retried_with_back_off_and_stops_nothing(tmp_path, caplog):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 4)
    dead_port = SMTPRecorder().port  # nothing listens there
    with HTTPRecorder(fail_first=2) as http:
        delivery = config(
            None, http, smtp_host="127.0.0.1", smtp_port=dead_port, email_to=("a@b.c",), attempts=3
        )
        deliverer = Deliverer(book, delivery)
        started = time.monotonic()
        batch = deliverer.deliver_due()
        elapsed = time.monotonic() - started
    assert batch is not None and len(batch.alarms) == 1
    # The webhook failed twice (HTTP 500) and got it on the third try; e-mail failed three times.
    assert http.requests == 3 and len(http.bodies) == 1
    assert deliverer.counters.failures == {"email": 1}
    assert deliverer.counters.retries == 4
    assert "alarm delivery by email failed 3 times" in caplog.text
    assert elapsed >= 0.01 + 0.02  # back-off 0.01 s then 0.02 s, at least
    assert book.alarms().iloc[0]["notifications_sent"] == 1
    status = json.loads((book.root / "delivery.json").read_text())
    assert (status["batches"], status["failures"], status["retries"]) == (1, {"email": 1}, 4)


def test_the_thread_sends_a_new_alarm_at_once_and_survives_a_broken_channel(tmp_path):
    class Broken:
        name = "broken"

        def send(self, batch):
            raise OSError("no route")

    book = AlarmBook(tmp_path)
    with HTTPRecorder() as http:
        delivery = config(None, http, batch_interval_s=3600.0, attempts=2)
        deliverer = Deliverer(
            book, delivery, channels=[Broken(), LogChannel(), WebhookChannel(delivery)]
        ).start()
        try:
            step(book, 0, 6, 4)
            woke = time.monotonic()
            deliverer.wake()
            wait_for(lambda: http.bodies, what="the webhook to receive the new alarm")
            assert time.monotonic() - woke < 20  # at once, not at the hourly batch
            step(book, 1, 6, 9)
            deliverer.wake()
            wait_for(lambda: len(http.bodies) == 2, what="the second alarm")
            assert HISTS[1] in http.bodies[1]["text"] and HISTS[0] not in http.bodies[1]["text"]
            assert deliverer._thread.is_alive()
        finally:
            deliverer.stop()
    assert not deliverer._thread.is_alive()
    assert deliverer.counters.failures["broken"] == 2


def test_email_channel_alone(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 4)
    with SMTPRecorder() as smtp:
        delivery = config(smtp, None)
        Deliverer(book, delivery, channels=[EmailChannel(delivery)]).deliver_due()
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["From"] == "overwatch@localhost"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"smtp_port": 0}, "alarm_smtp_port"),
        ({"smtp_host": "mail", "email_to": ()}, "alarm_email_to"),
        ({"smtp_host": "mail", "email_to": ("nobody",)}, "alarm_email_to"),
        ({"email_from": "me"}, "alarm_email_from"),
        ({"webhook_url": "ftp://x"}, "alarm_webhook_url"),
        ({"batch_interval_s": 0}, "alarm_batch_interval_s"),
        ({"max_resends": -1}, "alarm_max_resends"),
    ],
)
def test_bad_settings_name_the_field(overrides, field):
    with pytest.raises(DeliveryConfigError, match=f"^{field}: "):
        DeliveryConfig(**overrides)


def test_settings_default_to_the_log_only():
    delivery = DeliveryConfig.from_settings(Settings())
    assert [c.name for c in Deliverer(AlarmBook.__new__(AlarmBook), delivery).channels] == ["log"]
    settings = Settings.from_env(
        {"OVERWATCH_ALARM_SMTP_HOST": "mail", "OVERWATCH_ALARM_EMAIL_TO": "a@x.org, b@x.org"}
    )
    assert DeliveryConfig.from_settings(settings).email_to == ("a@x.org", "b@x.org")
