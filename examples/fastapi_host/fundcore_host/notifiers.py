"""Python notifiers for ``engine.dispatch_notifications``: email over SMTP, SMS over an HTTP gateway.

A notifier is any object with ``send(notification)``. Returning normally means delivered;
raising ``fundcore.PermanentDeliveryError`` fails the outbox entry at once; any other exception
is a retryable failure (the engine retries with exponential backoff).

Classification used here:

* SMTP: connection refused / reset / timeout, 4xx replies, authentication failures -> retryable;
  5xx replies (recipient or sender refused, message rejected) -> permanent.
* SMS gateway: network errors, 5xx, 408 and 429 -> retryable; any other 4xx -> permanent.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate

import fundcore

from .config import SmsSettings, SmtpSettings
from .logs import printable

log = logging.getLogger("fundcore_host.notifiers")


class EmailNotifier:
    """Sends each notification as a plain-text email through an SMTP server."""

    def __init__(self, settings: SmtpSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        if not settings.host:
            raise ValueError("EmailNotifier needs an SMTP host")
        self.settings = settings
        self.host = settings.host
        self.ssl_context = ssl_context

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def build_message(self, n: fundcore.Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = str(n.recipient)
        msg["Subject"] = str(n.subject)
        msg["Date"] = formatdate(usegmt=True)
        # Stable per outbox entry: a receiver can drop the duplicates of at-least-once delivery.
        msg["Message-ID"] = f"<{n.id}@fundcore.notifications>"
        msg["X-Fundcore-Notification-Id"] = str(n.id)
        msg["X-Fundcore-Transaction-Id"] = str(n.transaction_id)
        msg.set_content(str(n.body))
        return msg

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.tls == "ssl":
            return smtplib.SMTP_SSL(self.host, s.port, timeout=s.timeout_s, context=self._context())
        smtp = smtplib.SMTP(self.host, s.port, timeout=s.timeout_s)
        try:
            if s.tls == "starttls":
                smtp.starttls(context=self._context())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, notification: fundcore.Notification) -> None:
        msg = self.build_message(notification)
        try:
            smtp = self._connect()
            try:
                if self.settings.user:
                    smtp.login(self.settings.user, self.settings.password or "")
                smtp.send_message(msg, from_addr=self.settings.sender, to_addrs=[str(notification.recipient)])
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = f"recipient refused: {exc.recipients}"
            if codes and all(code >= 500 for code in codes):
                raise fundcore.PermanentDeliveryError(detail) from None
            raise RuntimeError(detail) from None
        except smtplib.SMTPAuthenticationError as exc:
            # a configuration problem of this server, not of the message: keep retrying
            raise RuntimeError(f"SMTP authentication failed: {exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if exc.smtp_code >= 500:
                raise fundcore.PermanentDeliveryError(detail) from None
            raise RuntimeError(detail) from None
        log.info("email %s delivered for client %s", notification.id, notification.client_id)


class SmsGatewayNotifier:
    """POSTs each SMS as JSON to an HTTP gateway.

    Request: ``POST <url>`` with ``Content-Type: application/json``, ``Idempotency-Key: <notification
    id>`` (and ``Authorization: Bearer <token>`` when configured); body
    ``{"id", "to", "body", "client_id", "transaction_id"}``. Any 2xx is delivered.
    """

    def __init__(self, settings: SmsSettings) -> None:
        if not settings.gateway_url:
            raise ValueError("SmsGatewayNotifier needs a gateway URL")
        if not settings.gateway_url.startswith(("http://", "https://")):
            raise ValueError("the SMS gateway URL must be http:// or https://")
        self.settings = settings
        self.url = settings.gateway_url

    def payload(self, n: fundcore.Notification) -> dict[str, str]:
        return {
            "id": str(n.id),
            "to": str(n.recipient),
            "body": str(n.body),
            "client_id": str(n.client_id),
            "transaction_id": str(n.transaction_id),
        }

    def send(self, notification: fundcore.Notification) -> None:
        data = json.dumps(self.payload(notification)).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": str(notification.id),
            "User-Agent": "fundcore-host",
        }
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = f"SMS gateway answered HTTP {exc.code}"
            exc.close()
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise fundcore.PermanentDeliveryError(detail) from None
            raise RuntimeError(detail) from None
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(f"SMS gateway unreachable: {exc}") from None
        log.info("sms %s delivered for client %s", notification.id, notification.client_id)


class LogNotifier:
    """Local-development stand-in: writes the message to the log and reports it delivered."""

    def __init__(self, what: str) -> None:
        self.what = what

    def send(self, notification: fundcore.Notification) -> None:
        log.warning(
            "%s %s not sent (no %s configured): to=%s subject=%r body=%r",
            notification.channel,
            notification.id,
            self.what,
            printable(notification.recipient),
            notification.subject,
            notification.body,
        )


class RoutingNotifier:
    """Routes each notification by ``notification.channel`` ("email" / "sms")."""

    def __init__(self, email: fundcore.Notifier, sms: fundcore.Notifier) -> None:
        self.routes: dict[str, fundcore.Notifier] = {"email": email, "sms": sms}

    def send(self, notification: fundcore.Notification) -> None:
        channel = notification.channel
        target = self.routes.get(channel)
        if target is None:
            raise fundcore.PermanentDeliveryError(f"unknown channel {channel!r}")
        target.send(notification)


def build_notifier(smtp: SmtpSettings, sms: SmsSettings, ssl_context: ssl.SSLContext | None = None) -> RoutingNotifier:
    """The notifier the host uses, from its settings (log stand-ins where nothing is configured)."""
    email: fundcore.Notifier = EmailNotifier(smtp, ssl_context) if smtp.host else LogNotifier("FUNDCORE_SMTP_HOST")
    text: fundcore.Notifier = SmsGatewayNotifier(sms) if sms.gateway_url else LogNotifier("FUNDCORE_SMS_GATEWAY_URL")
    return RoutingNotifier(email=email, sms=text)
