"""Every metered call is counted once, per month and company, shared by the processes."""
from __future__ import annotations

from datetime import timedelta

from dashboard.models import utcnow
from dashboard.qbo.client import RequestEvent
from dashboard.sync import budget as rules


def test_metered_counts_answered_reads_by_their_items_and_not_429s():
    from dashboard.services.budget import metered

    event = RequestEvent(realm="1", kind="batch", status=200, seconds=0.1, items=7, intuit_tid=None)
    assert metered(event) == 7
    assert metered(RequestEvent("1", "cdc", 200, 0.1, 1, None)) == 1
    assert metered(RequestEvent("1", "query", 400, 0.1, 1, None)) == 1  # a refused query was still read
    assert metered(RequestEvent("1", "query", 429, 0.1, 1, None)) == 0  # throttled: Intuit served nothing
    assert metered(RequestEvent("1", "query", 0, 30.0, 1, None)) == 0   # no answer


def test_counts_by_month_hour_and_company(app, fresh_budget):
    from dashboard.services import budget

    with app.app_context():
        ledger = budget.ledger()
        now = utcnow()
        december = rules.month_start(now) - timedelta(hours=1)  # the last hour of the previous month
        ledger.add({"111": 5}, december)
        ledger.add({"111": 3, "222": 10}, now)
        ledger.add({"222": 2}, now)
        ledger.flush()
        reading = ledger.read(rules.month_start(now), rules.rate_window_start(now, None), now)
        assert reading.used == 15                   # this month only
        assert reading.counting_since == rules.hour_start(december)
        in_window = 15 + (5 if december >= rules.rate_window_start(now, None) else 0)
        assert reading.window_calls == in_window    # the rate's window may reach into last month
        assert ledger.top(rules.month_start(now), 10) == [("222", 12), ("111", 3)]
        assert ledger.top(rules.month_start(december), 10) == [("111", 5)]
        snap = budget.snapshot(now)
        assert (snap.month_start, snap.used, snap.budget) == (rules.month_start(now), 15, 500_000)
        assert snap.projected >= 15 and not snap.paused
        assert snap.used_share == 15 / 500_000 and snap.projected_share == snap.projected / 500_000


def test_the_budget_setting(tmp_path):
    import pytest

    from dashboard.config import ConfigError, load_config

    env = {"SECRET_KEY": "x" * 32, "TOKEN_ENCRYPTION_KEYS": "SEByAMfZKDQ_U8ngNv4CqL0IyYJgdZU4eJzqBFB02sY="}
    assert load_config(env, tmp_path).qbo_monthly_call_budget == 500_000
    assert load_config({**env, "QBO_MONTHLY_CALL_BUDGET": "20000"}, tmp_path).qbo_monthly_call_budget == 20_000
    for bad in ("lots", "0", "-5"):
        with pytest.raises(ConfigError, match="QBO_MONTHLY_CALL_BUDGET"):
            load_config({**env, "QBO_MONTHLY_CALL_BUDGET": bad}, tmp_path)


# The OAuth tests' simulator fixtures: a connect goes through the real callback.
from tests.oauth.conftest import connect, qbo, sandbox  # noqa: E402,F401


def test_the_companyinfo_read_at_connect_is_counted(signed_in, qbo, db_session, fresh_budget):
    from dashboard.services import budget

    realm = qbo.sim.realms()[0]
    assert connect(signed_in, realm).status_code == 302
    served = [e for e in qbo.sim.request_log(realm) if "/companyinfo/" in e["path"]]
    assert len(served) == 1
    # The CompanyInfo read is counted, with whatever else the simulator served this realm (a
    # worker still running from the suite may have taken the queued backfill at once).
    assert budget.snapshot().used == sum(e["weight"] for e in qbo.sim.request_log(realm)
                                         if e["status"] not in (None, 429)) >= 1
    assert budget.overview().consumers[0].realm == realm


def test_sync_now_says_it_spends_over_the_budget(app, runner, fresh_budget):
    from tests.budget.conftest import set_budget
    from tests.dashboard import factories as make

    from dashboard.services import budget

    with app.app_context():
        make.company("100", "Alpha")
        budget.count_calls("100", 3)
    set_budget(app, 3)
    result = runner.invoke(args=["sync", "now", "--company", "999"])
    assert "API budget: It spends metered calls over this month's budget (3 of 3 used" in result.output


def test_the_budget_page_costs_the_same_statements_for_few_or_many_consumers(app, signed_in, fresh_budget):
    from dashboard.extensions import db
    from dashboard.services import budget
    from tests.dashboard import factories as make
    from tests.dashboard.test_query_count import _queries_for_page

    with app.app_context():
        for i in range(3):
            make.company(f"{i:03}", f"Company {i:03}")
            budget.count_calls(f"{i:03}", 10 + i)
        budget.ledger().flush()  # the counting itself is not the page's
        db.session.remove()
    few = _queries_for_page(app, signed_in, "/budget")
    with app.app_context():
        for i in range(3, 60):
            make.company(f"{i:03}", f"Company {i:03}")
            budget.count_calls(f"{i:03}", 10 + i)
        budget.ledger().flush()  # the counting itself is not the page's
        db.session.remove()
    many = _queries_for_page(app, signed_in, "/budget")
    assert len(few) == len(many) <= 6, "\n\n".join(many)
    html = signed_in.get("/budget").get_data(as_text=True)
    assert "Company 059" in html and "Company 049" not in html  # the top 10 only
    assert f"{sum(10 + i for i in range(60)):,}" in html
