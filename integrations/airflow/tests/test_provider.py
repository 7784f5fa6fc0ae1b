"""Provider packaging: Airflow discovers the provider, its ``@task.provenance``, its plugin
(with the listener) and its ``[provgate]`` configuration through the entry points."""

from __future__ import annotations


def test_provider_is_discovered_and_valid():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    pm = ProvidersManagerTaskRuntime()
    info = pm.providers["provgate-airflow"]  # validated against provider_info.schema.json
    assert info.data["name"] == "provgate"
    assert "provenance" in pm.taskflow_decorators
    assert [p.plugin_class for p in pm.plugins if p.name == "provgate"] == [
        "prov_airflow.plugin.ProvgatePlugin"
    ]
    configs = dict(pm.provider_configs)
    options = configs["provgate-airflow"]["provgate"]["options"]
    assert set(options) == {"home", "create_home", "policy", "listener", "lineage_url"}


def test_task_provenance_resolves_to_our_decorator():
    from airflow.sdk import task
    from prov_airflow.decorators import provenance_task

    assert task.provenance is provenance_task


def test_plugin_registers_the_listener():
    from airflow.sdk.listener import get_listener_manager
    from prov_airflow.listener import ProvgateListener

    manager = get_listener_manager()
    assert any(isinstance(p, ProvgateListener) for p in manager.pm.get_plugins())


def test_settings_defaults_and_env(monkeypatch):
    from prov_airflow import Settings

    for key in ("HOME", "LISTENER", "POLICY", "LINEAGE_URL", "CREATE_HOME"):
        monkeypatch.delenv(f"AIRFLOW__PROVGATE__{key}", raising=False)
    s = Settings.load()
    assert (s.home, s.create_home, s.policy, s.listener, s.lineage_url) == ("", True, "", True, "")
    assert s.lineage_link(3) is None
    monkeypatch.setenv("AIRFLOW__PROVGATE__LISTENER", "false")
    monkeypatch.setenv("AIRFLOW__PROVGATE__LINEAGE_URL", "http://127.0.0.1:8765/")
    s = Settings.load()
    assert s.listener is False
    assert s.lineage_link(3) == "http://127.0.0.1:8765/records/3"
