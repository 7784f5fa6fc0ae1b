"""The listener, installed with the provider: a DAG with no provgate code in it is recorded,
task by task, map index by map index, try by try (each retry linked to the try before),
its asset events carrying the record; ``[provgate] listener = False`` turns it off."""

from __future__ import annotations

from _records import (
    assert_retry_of,
    input_indices,
    node_report,
    open_home,
    orchestrator,
    statement,
    steps,
)
from _records import (
    tries as tries_of,
)

PLAIN = """
import pendulum
from datetime import timedelta
from airflow.sdk import Asset, dag, task, get_current_context

@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def plain():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x):
        return x * 2

    @task(outlets=[Asset(name="plain_total", uri="file:///plain/total.json")])
    def total(values):
        return sum(values)

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def flaky(n):
        if get_current_context()["ti"].try_number == 1:
            raise RuntimeError("first try fails")
        return n

    flaky(total(double.expand(x=numbers())))

plain()
"""


def test_plain_dag_is_recorded_task_by_task(run_dag, prov_home):
    res = run_dag("plain_listener", PLAIN)
    assert res.state == "success", res.states
    home = open_home(prov_home)
    att = res.attestation
    numbers = att("numbers")
    doubles = [att("double", i) for i in range(3)]
    total = att("total")
    for a in (numbers, *doubles, total, att("flaky")):
        report = node_report(home, a)
        for check in ("link", "signature", "trust", "inclusion"):
            assert report.checks[check] == "ok", report.to_dict()

    by_index = dict(steps(home))
    # Map-indexed instances: three distinct records, each naming its map index.
    assert len({d["log_index"] for d in doubles}) == 3
    for i, d in enumerate(doubles):
        st = by_index[d["log_index"]]
        assert orchestrator(st)["map_index"] == i
        assert st["predicate"]["buildDefinition"]["externalParameters"]["step"] == (
            f"plain_listener.double[{i}]"
        )
        assert input_indices(st) == {numbers["log_index"]: numbers["envelope_sha256"]}
    # The fan-in task's inputs are every mapped instance's attestation.
    assert input_indices(by_index[total["log_index"]]) == {
        d["log_index"]: d["envelope_sha256"] for d in doubles
    }
    # Retries: the failed try and the successful one are distinct records of the same task.
    flaky = [
        (i, st)
        for i, st in steps(home)
        if orchestrator(st)["task_id"] == "flaky" and orchestrator(st)["run_id"] == res.run_id
    ]
    tries = {orchestrator(st)["try_number"]: (i, st) for i, st in flaky}
    assert sorted(tries) == [1, 2]
    assert orchestrator(tries[1][1])["state"] == "failed"
    assert "first try fails" in orchestrator(tries[1][1])["error"]
    assert orchestrator(tries[2][1])["state"] == "success"
    assert tries[2][0] == att("flaky")["log_index"]
    for _, st in tries.values():  # both linked to the same upstream record
        assert input_indices(st) == {total["log_index"]: total["envelope_sha256"]}
    # ... and the second is retry-of the first (found by instance: XComs were cleared).
    first, second = tries_of(home, ["plain_listener", "flaky", res.run_id, -1])
    assert (first.log_index, second.log_index) == (tries[1][0], tries[2][0])
    assert_retry_of(home, first, second, custody=False)

    # The asset event of a plain task with an outlet carries its record and content digest.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.settings import Session

    session = Session()
    (event,) = (
        session.query(AssetEvent)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .filter(AssetModel.name == "plain_total", AssetEvent.source_run_id == res.run_id)
        .all()
    )
    extra = event.extra["provgate"]
    session.close()
    assert extra["attestation"] == total
    (output,) = statement(home, total["log_index"])["predicate"]["runDetails"]["byproducts"]
    assert output["name"] == "return_value.json"
    assert extra["content_digest"] == output["annotations"]["blake3"]


def test_listener_off_by_config(run_dag, prov_home, monkeypatch):
    monkeypatch.setenv("AIRFLOW__PROVGATE__LISTENER", "False")
    res = run_dag("plain_off", PLAIN)
    assert res.state == "success", res.states
    assert not [k for k in res.xcoms if k[2] == "provgate_attestation"]
    assert not (prov_home / "ledger.sqlite").exists()
