"""The recommended topology, whole, under faults (tests/topology.py builds and drives it):
losing an app instance or restarting the primary is invisible to clients, losing the
standby or PgBouncer costs at most 3 s of 503s, and no answer is ever wrong or foreign.

Skipped, saying what is missing, without pgbouncer or nginx (.ci/run installs both).
"""

import os

import pytest

from tests.servers import REPO
from tests.topology import MISSING, Topology, run_phases

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed here (apt-get install pgbouncer nginx); "
    ".ci/run installs them",
)
LIFETIME_SECONDS = 3.0  # DB_POOL_MAX_LIFETIME_SECONDS for the run
HOLD_SECONDS = 3.0  # load held per step
FAILOVER_WITHIN = 3.0
# The standby serves again once a worker's connection made before it returned reaches its
# lifetime and the replacement goes through PgBouncer (which retries its server within
# server_login_retry, 1 s). All are back within two lifetimes: a replacement that meets
# PgBouncer before it reconnected goes to the primary for one more (docs/scaling.md).
SERVES_WITHIN = LIFETIME_SECONDS + 1.0 + 1.5
ALL_BACK_WITHIN = 2 * LIFETIME_SECONDS + 1.0 + 1.5


@pytest.fixture(scope="module")
def outcome():
    """Every phase's summary, the run's facts and the final reconcile."""
    with Topology(REPO / ".dev" / f"topology-{os.getpid()}", LIFETIME_SECONDS) as topology:
        summaries, facts = run_phases(topology, HOLD_SECONDS)
        reconciled = topology.reconcile()
        facts["cached login"] = topology.login_cached_by_pgbouncer()
    phases = {row["phase"]: row for row in summaries}
    return phases, facts, reconciled


def _only_200(row):
    assert set(row["by_status"]) == {200} and row["requests"] > 0, row


def test_no_answer_is_wrong_or_foreign_and_every_error_is_a_503_json(outcome):
    phases, _, _ = outcome
    assert {name: row["wrong"] for name, row in phases.items()} == {name: [] for name in phases}
    for row in phases.values():
        assert set(row["by_status"]) <= {200, 503}, row


def test_steady_load_is_all_200(outcome):
    phases, _, _ = outcome
    _only_200(phases["steady"])
    _only_200(phases["steady again"])


def test_losing_an_app_instance_is_invisible_and_it_comes_back(outcome):
    row = outcome[0]["app instance killed (kill -9 master)"]
    _only_200(row)
    assert row["both_serve"]


def test_losing_the_standby_fails_over_to_the_primary_within_3_seconds(outcome):
    row = outcome[0]["standby stopped (immediate)"]
    assert row["on_primary"] > 0, "nothing reads from the primary: no failover happened"
    # /readyz says where workers read. It waits 0.5 s for a connection, and while the standby
    # is gone a new one may take PgBouncer's query_wait_timeout (1 s) to fail over: then 503.
    assert "primary" in row["readyz_roles"], row
    assert set(row["readyz_roles"]) <= {"primary", "unavailable"}, row
    assert row["longest_non_200_s"] <= FAILOVER_WITHIN, row
    assert row["recovered_after_s"] <= FAILOVER_WITHIN, row


def _back_on_standby(row):
    assert row["standby_serves_s"] is not None and row["standby_serves_s"] <= SERVES_WITHIN, row
    assert row["back_on_standby_s"] is not None and row["back_on_standby_s"] <= ALL_BACK_WITHIN, row


def test_the_standby_serves_again_within_the_pool_lifetime(outcome):
    row = outcome[0]["standby started"]
    _only_200(row)
    _back_on_standby(row)
    assert row["readyz_roles"] == ["standby"], row


def test_restarting_the_primary_is_invisible(outcome):
    _only_200(outcome[0]["primary restarted"])


def test_restarting_pgbouncer_costs_at_most_3_seconds_and_needs_no_app_restart(outcome):
    row = outcome[0]["PgBouncer restarted"]
    assert row["longest_non_200_s"] <= FAILOVER_WITHIN, row
    assert row["recovered_after_s"] <= FAILOVER_WITHIN, row
    _back_on_standby(row)


def test_worker_memory_stays_flat_and_the_rollups_reconcile(outcome):
    _, facts, reconciled = outcome
    assert facts["rss_growth_mb"] is not None and facts["rss_growth_mb"] < 10, facts
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "0 rollup rows drifted" in reconciled.stdout


def test_the_trap_a_pgbouncer_that_knows_the_password_does_not_fail_over(outcome):
    """Why deploy/pgbouncer.ini looks logins up on the server (docs/scaling.md): with the
    password in PgBouncer's own list, libpq settles on it although its standby is gone."""
    port, in_hot_standby, error = outcome[1]["cached login"]
    assert in_hot_standby == "on" and error is not None, (port, in_hot_standby, error)
