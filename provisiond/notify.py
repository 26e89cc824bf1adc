"""Admin alerts, the client's welcome mail and billing webhooks, sent through an outbox.

Provisioning only INSERTs ``Notification`` rows, inside its own transaction: a rolled-back
outcome notifies no one, and a slow mail server or billing system never holds up a job.
``deliver`` sends the due rows apart (the daemon's ``notify`` job), retrying a failed send with
backoff: 30 s, doubling, capped at an hour, ``MAX_ATTEMPTS`` tries, then the row is ``failed``.
A row's ``dedup_key`` is unique and inserts ignore a conflict, so the same failure alerts once
however often it is reported.

Payloads hold nothing secret. A welcome mail is rendered when it is sent, and the service's
password and its steps' secrets are decrypted then, only when its product says so
(``Product.welcome_password``).

Webhooks are signed like the Opterius contract (shared/panels/opterius.md): ``X-Timestamp`` is
Unix seconds, ``X-Signature`` the lowercase hex HMAC-SHA256, keyed by ``billing_webhook_secret``,
of ``<timestamp><body>``. The body is serialized once; the bytes signed are the bytes sent.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import jinja2

from provisiond import panels, step_secrets
from provisiond.config import Settings, bundled_dir
from provisiond.crypto import Redactor, Vault
from provisiond.models import Notification, Server, Service, utcnow

log = logging.getLogger("provisiond.notify")

RETRY_BASE = 30.0
RETRY_CAP = 3600.0
MAX_ATTEMPTS = 10
CLAIM_SECONDS = 300.0   # a claimed row is not picked again meanwhile (several daemons, one database)
SEND_TIMEOUT = 20.0
BATCH = 50


# -- the outbox: inserts only --------------------------------------------------------------

def _queue(kind: str, dedup_key: str, payload: dict) -> None:
    Notification.insert(kind=kind, dedup_key=dedup_key[:255], payload=payload, status="pending",
                        attempts=0, next_attempt_at=utcnow(), created_at=utcnow()
                        ).on_conflict_ignore().execute()


def alert(settings: Settings, subject: str, body: str, dedup_key: str) -> None:
    """An admin alert, by mail and by webhook as configured; once per ``dedup_key``."""
    if settings.smtp_host and settings.alert_emails:
        _queue("alert_email", f"{dedup_key}:email", {"subject": subject, "body": body})
    if settings.alert_webhook_url:
        _queue("alert_webhook", f"{dedup_key}:webhook",
               {"event": "alert", "id": dedup_key, "subject": subject, "body": body})


def welcome(settings: Settings, service: Service) -> None:
    """The client's welcome mail, once per service; rendered (and its password read) at send time."""
    if settings.smtp_host and service.email:
        _queue("welcome_email", f"welcome:{service.id}", {"service_id": service.id, "ref": service.ref})


def billing_event(settings: Settings, service: Service, event: str, previous_status: str | None,
                  change_id: str | None = None) -> None:
    """Tell the billing system that a service changed state.

    ``change_id`` names the change (the job that made it), so recording the same change twice
    posts once; without it the current time does.
    """
    if not settings.billing_webhook_url:
        return
    now = utcnow()
    key = f"billing:{service.id}:{event}:{change_id or now.isoformat()}"
    _queue("billing_webhook", key, {
        "id": key, "event": event, "occurred_at": now.isoformat(timespec="seconds") + "Z",
        "previous_status": previous_status, "service": _service_facts(service)})


def server_event(settings: Settings, server: str, event: str, facts: dict, change_id: str) -> None:
    """Tell the billing system about a server (``server.drift``); once per ``change_id``."""
    if not settings.billing_webhook_url:
        return
    key = f"billing:server:{server}:{event}:{change_id}"
    _queue("billing_webhook", key, {"id": key, "event": event, "server": server,
                                    "occurred_at": utcnow().isoformat(timespec="seconds") + "Z", **facts})


def _service_facts(service: Service) -> dict:
    return {"id": service.id, "ref": service.ref, "status": service.status,
            "status_reason": service.status_reason, "domain": service.domain,
            "username": service.username, "package": service.package,
            "product": service.product.name, "server": service.server.name if service.server_id else None,
            "remote_id": service.remote_id, "last_error": service.last_error,
            "paid_until": service.paid_until.isoformat() if service.paid_until else None}


# -- sending -------------------------------------------------------------------------------

def deliver(settings: Settings, vault: Vault, now: datetime.datetime | None = None) -> int:
    """Send the due rows of the outbox; returns how many were sent."""
    now = now or utcnow()
    due = [row_id for (row_id,) in Notification.select(Notification.id).where(
        (Notification.status == "pending") & (Notification.next_attempt_at <= now))
        .order_by(Notification.next_attempt_at, Notification.id).limit(BATCH).tuples()]
    sent = 0
    for row_id in due:
        row = _claim(row_id, now)
        if row is None:
            continue
        try:
            _send(settings, vault, row, now)
        except Exception as exc:  # noqa: BLE001 - whatever a send raises, the row is retried
            _retry_later(settings, row, now, exc)
            continue
        Notification.update(status="sent", sent_at=now, last_error=None).where(
            Notification.id == row.id).execute()
        sent += 1
    return sent


def _claim(row_id: int, now: datetime.datetime) -> Notification | None:
    """Take a due row for this attempt (counted now), or None when another sender took it."""
    taken = Notification.update(attempts=Notification.attempts + 1,
                                next_attempt_at=now + datetime.timedelta(seconds=CLAIM_SECONDS)).where(
        (Notification.id == row_id) & (Notification.status == "pending")
        & (Notification.next_attempt_at <= now)).execute()
    return Notification.get_by_id(row_id) if taken else None


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 30, 60, 120, ... capped at 3600."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP)


def _retry_later(settings: Settings, row: Notification, now: datetime.datetime, exc: Exception) -> None:
    error = Redactor([settings.smtp_password, settings.billing_webhook_secret]).text(
        f"{type(exc).__name__}: {exc}")[:1000]
    if row.attempts >= MAX_ATTEMPTS:
        log.error("notification %s (%s) failed for good after %d attempts: %s",
                  row.id, row.kind, row.attempts, error)
        Notification.update(status="failed", last_error=error).where(Notification.id == row.id).execute()
        return
    log.warning("notification %s (%s) attempt %d failed, retried later: %s", row.id, row.kind, row.attempts, error)
    Notification.update(last_error=error, next_attempt_at=now + datetime.timedelta(
        seconds=retry_delay(row.attempts))).where(Notification.id == row.id).execute()


def _send(settings: Settings, vault: Vault, row: Notification, now: datetime.datetime) -> None:
    payload = row.payload
    if row.kind == "alert_email":
        _mail(settings, list(settings.alert_emails), payload["subject"], payload["body"])
    elif row.kind == "welcome_email":
        service = Service.get_by_id(payload["service_id"])
        subject, body = welcome_text(settings, vault, service)
        _mail(settings, [service.email], subject, body)
    elif row.kind == "alert_webhook":
        post_signed(settings.alert_webhook_url, settings.billing_webhook_secret, payload, now)
    elif row.kind == "billing_webhook":
        post_signed(settings.billing_webhook_url, settings.billing_webhook_secret, payload, now)
    else:
        raise ValueError(f"unknown notification kind {row.kind!r}")


def _mail(settings: Settings, to: list[str], subject: str, body: str) -> None:
    if not settings.smtp_host or not to:
        raise ValueError("no SMTP host or no recipient configured")
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message.set_content(body)
    if settings.smtp_port == 465:
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=SEND_TIMEOUT,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SEND_TIMEOUT)
    with smtp:
        if settings.smtp_starttls and settings.smtp_port != 465:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


# -- signed webhooks -----------------------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 keyed by ``secret`` over ``<timestamp><body>``."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str | int, body: bytes | str, signature: str,
                     now: float | datetime.datetime, window: float = 300) -> bool:
    """A receiver's check: the signature matches (constant time) and the timestamp is within
    ``window`` seconds of ``now`` (Unix seconds, or a naive UTC datetime)."""
    stamp = str(timestamp)
    if not (stamp.isascii() and stamp.isdigit()):   # int() would take " 17", "+17" or "1_7"
        return False
    if abs(_unix(now) - int(stamp)) > window:
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return hmac.compare_digest(sign(secret, stamp, raw).encode("ascii"), str(signature).encode("utf-8"))


def _unix(moment: float | datetime.datetime) -> float:
    if isinstance(moment, datetime.datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
        return aware.timestamp()
    return float(moment)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a body-less GET; count it as a failure instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_signed(url: str, secret: str, payload: dict, now: datetime.datetime) -> None:
    """POST ``payload`` as JSON, signed; any answer but 2xx raises."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("webhook URL must be http:// or https://")
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    timestamp = str(int(_unix(now)))
    headers = {"Content-Type": "application/json", "User-Agent": "provisiond", "X-Timestamp": timestamp}
    if secret:
        headers["X-Signature"] = sign(secret, timestamp, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _OPENER.open(request, timeout=SEND_TIMEOUT) as answer:
        answer.read()


# -- the welcome mail ----------------------------------------------------------------------

def welcome_text(settings: Settings, vault: Vault, service: Service) -> tuple[str, str]:
    """(subject, body) of a service's welcome mail; a template's leading ``Subject:`` line is
    the subject."""
    path = Path(settings.welcome_template) if settings.welcome_template else bundled_dir("config") / "welcome.txt.j2"
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
    template = environment.from_string(path.read_text(encoding="utf-8"))
    server = service.server
    password = None
    # One the billing system chose is never mailed: it showed it to the client itself.
    if service.product.welcome_password and service.password and service.password_state != "given":
        password = vault.decrypt(service.password, f"password of service {service.ref}")
    # The steps' secrets (a mailbox's, a database's) were made by provisiond: mailed on the same word.
    made = step_secrets.stored(service.id, vault) if service.product.welcome_password else {}
    text = template.render(username=service.username, domain=service.domain, email=service.email,
                           name=service.name,
                           ref=service.ref, package=service.package, product=service.product.name,
                           server=server.host if server else None, panel_url=panel_url(settings, server),
                           password=password, step_secrets=made)
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        return first.split(":", 1)[1].strip(), rest.lstrip("\n")
    return f"Your hosting account for {service.domain} is ready", text


def panel_url(settings: Settings, server: Server | None) -> str | None:
    """``scheme://host:port`` of the server's panel (the panel's default port when none is set)."""
    if server is None:
        return None
    port = server.port
    if port is None:
        port = panels.discover(settings.panel_dirs()).get(server.panel).default_port
    scheme = (server.credentials or {}).get("scheme") or "https"
    return f"{scheme}://{server.host}:{port}" if port else f"{scheme}://{server.host}"
