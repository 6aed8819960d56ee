"""Transports: POST a webhook, send an e-mail over SMTP. Each has a timeout and raises
DeliveryError with a message safe to log and show.

Never in a message or a log line: the webhook URL's path (a Slack or Teams webhook URL
*is* its secret) or the SMTP password. Errors name the host only, and the exception text
of requests (which quotes the URL) is never passed on.
"""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

import requests


class DeliveryError(Exception):
    """A channel did not take a message; the text names the host, never a secret."""


def safe_url(url: str) -> str:
    """``https://hooks.slack.com/…``: the scheme and host of a secret URL, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def post_webhook(url: str, body: Mapping[str, Any], timeout: float) -> int:
    """POST ``body`` as JSON; return the HTTP status. Any answer but 2xx is a failure."""
    where = safe_url(url)
    try:
        response = requests.post(url, json=body, timeout=(min(5.0, timeout), timeout), allow_redirects=False,
                                 headers={"User-Agent": "qbosync-alerts"})
    except requests.Timeout:
        raise DeliveryError(f"The webhook at {where} did not answer within {timeout:g} s.") from None
    except requests.RequestException as exc:
        raise DeliveryError(f"The webhook at {where} could not be reached ({type(exc).__name__}).") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"The webhook at {where} answered HTTP {response.status_code}.")
    return response.status_code


def send_email(smtp_url: str, sender: str, recipients: Sequence[str], subject: str, text: str,
               timeout: float) -> None:
    """Send a plain-text e-mail.

    ``smtps://`` speaks TLS from the first byte (port 465 by default). ``smtp://`` (port 587
    by default) upgrades with STARTTLS when the server offers it, and refuses to send a
    password over a connection that stayed unencrypted. Certificates are verified.
    """
    parts = urlsplit(smtp_url)
    implicit_tls = parts.scheme == "smtps"
    host = parts.hostname or ""
    port = parts.port or (465 if implicit_tls else 587)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    where = f"{host}:{port}"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(text)
    try:
        if implicit_tls:
            server: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                    context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        with server:
            server.ehlo()
            if not implicit_tls:
                if server.has_extn("starttls"):
                    server.starttls(context=ssl.create_default_context())
                    server.ehlo()
                elif user:
                    raise DeliveryError(f"The SMTP server at {where} offers no STARTTLS: the password is not "
                                        "sent unencrypted (use smtps:// or a server with STARTTLS).")
            if user:
                server.login(user, password)
            server.send_message(message)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"The SMTP server at {where} refused the login (code {exc.smtp_code}).") from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError(f"The SMTP server at {where} refused the recipients.") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"The SMTP server at {where} answered {exc.smtp_code}.") from None
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        # OSError covers refused connections, timeouts and TLS failures (ssl.SSLError).
        raise DeliveryError(f"The SMTP server at {where} could not be used ({type(exc).__name__}).") from None
