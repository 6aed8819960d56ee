"""The words of alerts: the event (our JSON payload, stored with each delivery) and its
rendering for each channel (plain JSON, Slack, Microsoft Teams, e-mail). Pure functions.

Events (``event``): ``problem`` (new, back, or at a new stage), ``reminder`` (still open
after a day), ``recovery`` (gone), ``digest`` (more than the threshold of one of those in
one pass, ``of`` says which) and ``test`` (``flask alert test``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

SOURCE = "qbosync"
PRODUCT = "QuickBooks Sync"
DIGEST_LISTED = 20      # items listed in a chat digest (e-mail lists them all, up to EMAIL_LISTED)
EMAIL_LISTED = 500
WORDS = {"problem": "Problem", "reminder": "Still open", "recovery": "Resolved", "test": "Test"}


def company_url(base_url: str | None, realm: str) -> str:
    """The company page: absolute with ALERT_BASE_URL, a path otherwise."""
    return f"{base_url or ''}/companies/{realm}"


def item(*, key: str, kind: str, title: str, message: str, company_source_id: str | None,
         object_type: str | None, stage: str | None, opened_at: datetime, resolved_at: datetime | None,
         base_url: str | None) -> dict[str, Any]:
    """One problem as the payload carries it."""
    return {
        "key": key, "kind": kind, "title": title, "message": message,
        "company": ({"realm": company_source_id, "url": company_url(base_url, company_source_id)}
                    if company_source_id else None),
        "object_type": object_type, "stage": stage,
        "opened_at": opened_at.isoformat(), "resolved_at": resolved_at.isoformat() if resolved_at else None,
    }


def single(event: str, alert: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The event for one problem."""
    return {"source": SOURCE, "event": event, "at": now.isoformat(), **alert}


def digest(of: str, alerts: list[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """One event for many problems of one sort (an Intuit outage must not send 500 messages)."""
    companies = len({a["company"]["realm"] for a in alerts if a.get("company")})
    return {"source": SOURCE, "event": "digest", "of": of, "at": now.isoformat(),
            "title": digest_title(of, len(alerts), companies), "count": len(alerts),
            "companies": companies, "alerts": list(alerts)}


def digest_title(of: str, count: int, companies: int) -> str:
    what = {"problem": "new problems", "reminder": "problems still open", "recovery": "problems resolved"}[of]
    where = f" in {companies} companies" if companies > 1 else (" in 1 company" if companies == 1 else "")
    return f"{count} {what}{where}"


def test_event(now: datetime, base_url: str | None) -> dict[str, Any]:
    return {"source": SOURCE, "event": "test", "at": now.isoformat(),
            "title": f"Test alert from {PRODUCT}",
            "message": "If you read this, alerts reach this channel. Nothing is wrong.",
            "company": None, "url": f"{base_url}/alerts" if base_url else None}


def summary(event: Mapping[str, Any]) -> str:
    """One line: what happened."""
    if event["event"] == "digest":
        return event["title"]
    if event["event"] == "reminder":
        return f"Still open since {_day(event.get('opened_at'))}: {event['title']}"
    return f"{WORDS.get(event['event'], event['event'].title())}: {event['title']}"


def _day(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC") if iso else "?"


def _entries(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(event["alerts"]) if event["event"] == "digest" else [event]


def _link(entry: Mapping[str, Any]) -> str | None:
    company = entry.get("company")
    return company["url"] if company else entry.get("url")


# -- webhooks ------------------------------------------------------------------------------------
def webhook_body(fmt: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The body to POST for ``ALERT_WEBHOOK_FORMAT`` ``json`` (the event), ``slack`` or ``teams``."""
    if fmt == "slack":
        return slack(event)
    if fmt == "teams":
        return teams(event)
    return dict(event)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_line(entry: Mapping[str, Any]) -> str:
    link = _link(entry)
    title = _slack_escape(entry["title"])
    return f"• <{link}|{title}>" if link and link.startswith("http") else f"• {title}"


def slack(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications, fallbacks) and Block Kit ``blocks``."""
    text = summary(event)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": text[:150]}}]
    if event["event"] == "digest":
        entries = _entries(event)
        lines = [_slack_line(e) for e in entries[:DIGEST_LISTED]]
        if len(entries) > DIGEST_LISTED:
            lines.append(f"…and {len(entries) - DIGEST_LISTED} more (see the Alerts page)")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(event["message"])[:3000]}})
        link = _link(event)
        if link and link.startswith("http"):
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"<{link}|Open in {PRODUCT}>"}]})
    return {"text": text, "blocks": blocks}


def teams(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Microsoft Teams message carrying an Adaptive Card: the form Teams' Workflows
    ("When a Teams webhook request is received") and incoming webhooks accept."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": summary(event), "weight": "Bolder", "size": "Medium", "wrap": True}]
    actions = []
    if event["event"] == "digest":
        entries = _entries(event)
        for entry in entries[:DIGEST_LISTED]:
            body.append({"type": "TextBlock", "text": f"- {entry['title']}", "wrap": True, "spacing": "None"})
        if len(entries) > DIGEST_LISTED:
            body.append({"type": "TextBlock", "text": f"…and {len(entries) - DIGEST_LISTED} more", "wrap": True})
    else:
        body.append({"type": "TextBlock", "text": event["message"], "wrap": True})
        facts = [{"title": "Company", "value": event["company"]["realm"]}] if event.get("company") else []
        if event.get("object_type"):
            facts.append({"title": "Object type", "value": event["object_type"]})
        if event.get("opened_at"):
            facts.append({"title": "Since", "value": _day(event["opened_at"])})
        if facts:
            body.append({"type": "FactSet", "facts": facts})
        link = _link(event)
        if link and link.startswith("http"):
            actions.append({"type": "Action.OpenUrl", "title": f"Open in {PRODUCT}", "url": link})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4", "body": body}
    if actions:
        card["actions"] = actions
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


# -- e-mail -----------------------------------------------------------------------------------------
def email(event: Mapping[str, Any]) -> tuple[str, str]:
    """Return the subject and the plain-text body."""
    subject = f"[{PRODUCT}] {summary(event)}"[:250]
    lines: list[str] = [summary(event), ""]
    for entry in _entries(event)[:EMAIL_LISTED]:
        if event["event"] == "digest":
            lines.append(f"- {entry['title']}")
            lines.extend(_indented(entry))
        else:
            lines.append(entry["message"])
            lines.append("")
            lines.extend(_details(entry))
    if event["event"] == "digest" and len(event["alerts"]) > EMAIL_LISTED:
        lines.append(f"…and {len(event['alerts']) - EMAIL_LISTED} more (see the Alerts page).")
    lines += ["", f"-- {PRODUCT}: one message per problem, a reminder at most daily, and one when it is resolved."]
    return subject, "\n".join(lines) + "\n"


def _details(entry: Mapping[str, Any]) -> Iterable[str]:
    if entry.get("object_type"):
        yield f"Object type: {entry['object_type']}"
    if entry.get("opened_at"):
        yield f"Since: {_day(entry['opened_at'])}"
    if entry.get("resolved_at"):
        yield f"Resolved: {_day(entry['resolved_at'])}"
    link = _link(entry)
    if link:
        yield f"Open: {link}"


def _indented(entry: Mapping[str, Any]) -> Iterable[str]:
    yield f"  {entry['message']}"
    link = _link(entry)
    if link:
        yield f"  {link}"
