"""Model-based test: random edits, faults, long gaps and sync cycles; after every completed
cycle the database equals QuickBooks."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import delete, update

from dashboard.extensions import db
from dashboard.models import SyncState, utcnow
from dashboard.services.sync_foreground import run_now
from dashboard.sync.errors import SyncError

from .conftest import assert_equal_to_source, connect


FINISHED: list[str] = []


def _empty_tables() -> None:
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        if table.name != "operator":
            db.session.execute(delete(table))
    db.session.commit()


class SyncMachine(RuleBasedStateMachine):
    def __init__(self, sim) -> None:
        super().__init__()
        self.sim = sim
        self.realm = ""
        self.counter = 0
        self.synced_clean = False  # the last cycle completed with nothing pending

    @initialize(seed=st.integers(0, 10_000))
    def start(self, seed):
        _empty_tables()
        self.sim.clear_faults()
        self.realm = self.sim.generate(seed=seed, companies=1, customers=15, invoices=25, tie_size=9)[0]
        connect(self.sim, self.realm)
        self.synced_clean = False

    def _pick(self, entity, data):
        records = self.sim.records(self.realm, entity)
        return data.draw(st.sampled_from(records)) if records else None

    @rule()
    def create_customer(self):
        self.counter += 1
        self.sim.create_customer(self.realm, DisplayName=f"Model Customer {self.counter}")

    @rule(data=st.data())
    def create_invoice(self, data):
        customer = self._pick("Customer", data)
        if customer:
            self.sim.create_invoice(self.realm, customer["Id"])

    @rule(data=st.data())
    def update_customer(self, data):
        customer = self._pick("Customer", data)
        if customer:
            self.counter += 1
            self.sim.update_customer(self.realm, customer["Id"], CompanyName=f"Co {self.counter}")

    @rule(data=st.data())
    def deactivate_customer(self, data):
        customer = self._pick("Customer", data)
        if customer and customer.get("Active", True):
            self.sim.deactivate_customer(self.realm, customer["Id"])

    @rule(data=st.data())
    def update_invoice(self, data):
        invoice = self._pick("Invoice", data)
        if invoice:
            self.counter += 1
            self.sim.update_invoice(self.realm, invoice["Id"], DocNumber=f"M-{self.counter}")

    @rule(data=st.data())
    def delete_invoice(self, data):
        invoice = self._pick("Invoice", data)
        if invoice:
            self.sim.delete_invoice(self.realm, invoice["Id"])

    @rule(kind=st.sampled_from(["500", "503", "429", "truncated"]), count=st.integers(1, 6))
    def inject_fault(self, kind, count):
        # Up to 3 are absorbed by the page fetch's retries; more fail the cycle.
        self.sim.inject_fault(kind, realm=self.realm, count=count)

    @rule()
    def long_gap(self):
        db.session.execute(update(SyncState).where(SyncState.is_initial_backfill_completed.is_(True))
                           .values(last_successful_sync_time=utcnow() - timedelta(days=31)))
        db.session.commit()

    @rule()
    def sync_cycle(self):
        try:
            run_now(self.realm)
        except SyncError:
            self.synced_clean = False
            return
        self.synced_clean = True
        assert_equal_to_source(self.sim, self.realm)

    def teardown(self):
        """Every example ends with a clean cycle, and then the database equals the source."""
        if not self.realm:
            return
        self.sim.clear_faults()
        run_now(self.realm)
        assert_equal_to_source(self.sim, self.realm)
        FINISHED.append(self.realm)

    @invariant()
    def failed_cycles_leave_no_run_in_progress(self):
        if self.realm:
            from dashboard.services.sync_jobs import active_run

            assert active_run(self.realm) is None


def test_random_histories_end_equal_to_source(qbo_app, sandbox_server, monkeypatch):
    monkeypatch.setitem(qbo_app.config, "SYNC_PAGE_SIZE", 7)  # many pages, ties longer than a page
    run_state_machine_as_test(
        lambda: SyncMachine(sandbox_server.sim),
        settings=settings(max_examples=10, stateful_step_count=14, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)))
    assert len(FINISHED) >= 10
