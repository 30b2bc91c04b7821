"""connection_settings: effective connection of a host from its merged variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import connection_settings, load_inventory

PLANT = Path(__file__).parent / "inventory" / "fixtures" / "files" / "plant.yml"


def test_defaults_use_the_inventory_name_and_ssh() -> None:
    assert connection_settings({}, "hmi01") == {
        "host": "hmi01",
        "port": None,
        "user": None,
        "connection": "ssh",
        "private_key_file": None,
        "password": None,
        "python_interpreter": None,
    }


def test_ansible_names() -> None:
    settings = connection_settings(
        {
            "ansible_host": "10.0.5.1",
            "ansible_port": "2222",
            "ansible_user": "maint",
            "ansible_connection": "paramiko",
            "ansible_ssh_private_key_file": "~/.ssh/plant",
            "ansible_python_interpreter": "/usr/bin/python3.6",
        },
        "gw-1",
    )
    assert settings["host"] == "10.0.5.1"
    assert settings["port"] == 2222
    assert settings["user"] == "maint"
    assert settings["connection"] == "paramiko"
    assert settings["private_key_file"] == str(Path("~/.ssh/plant").expanduser())
    assert settings["python_interpreter"] == "/usr/bin/python3.6"


def test_bare_names_work_but_rank_below_ansible_names() -> None:
    bare = {"host": "10.0.0.1", "port": 22, "user": "op", "connection": "local"}
    assert connection_settings(bare, "h") == {
        **connection_settings({}, "h"),
        "host": "10.0.0.1",
        "port": 22,
        "user": "op",
        "connection": "local",
    }
    both = {**bare, "ansible_host": "10.0.0.2", "ansible_port": 2222, "ansible_user": "maint"}
    settings = connection_settings(both, "h")
    assert (settings["host"], settings["port"], settings["user"]) == ("10.0.0.2", 2222, "maint")
    assert connection_settings({"ssh_private_key_file": "/k"}, "h")["private_key_file"] == "/k"


def test_bare_password_ranks_below_ansible_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BARE_PW", "bare")
    monkeypatch.setenv("ANSIBLE_PW", "ansible")
    assert connection_settings({"password": "env:BARE_PW"}, "h")["password"] == "bare"
    both = {"password": "env:BARE_PW", "ansible_password": "env:ANSIBLE_PW"}
    assert connection_settings(both, "h")["password"] == "ansible"


def test_name_can_come_from_merged_magic_vars() -> None:
    assert connection_settings({"inventory_hostname": "hist01"})["host"] == "hist01"


def test_smart_connection_means_ssh() -> None:
    assert connection_settings({"ansible_connection": "smart"}, "h")["connection"] == "ssh"


def test_env_password_is_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HMI_PASSWORD", "from-env")
    assert connection_settings({"ansible_password": "env:HMI_PASSWORD"}, "h")["password"] == (
        "from-env"
    )
    lookup = "{{ lookup('env', 'HMI_PASSWORD') }}"
    assert connection_settings({"password": lookup}, "h")["password"] == "from-env"


def test_missing_env_password_names_host_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_PASSWORD", raising=False)
    with pytest.raises(InventoryError) as info:
        connection_settings({"ansible_password": "env:GW_PASSWORD"}, "gw-1")
    assert "gw-1" in info.value.message and "GW_PASSWORD" in info.value.message


def test_password_given_as_extra_var_is_used_as_is() -> None:
    # Inventory files are checked on load; a literal here came from -e or from code.
    assert connection_settings({"ansible_password": "x"}, "h")["password"] == "x"


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [
        ({"ansible_port": "ssh"}, "ansible_port must be a port number"),
        ({"ansible_port": 70000}, "between 1 and 65535"),
        ({"ansible_host": "{{ inventory_hostname }}.plant"}, "Jinja expression"),
        ({"ansible_password": "{{ vault_pw }}"}, "Jinja expression"),
    ],
)
def test_unusable_values_are_errors_naming_the_host(hostvars: dict, message: str) -> None:
    with pytest.raises(InventoryError) as info:
        connection_settings(hostvars, "hmi07")
    assert message in info.value.message and "hmi07" in info.value.message


def test_settings_of_plant_inventory_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HMI_PASSWORD", "hmi-secret")
    monkeypatch.setenv("GW_PASSWORD", "gw-secret")
    inv = load_inventory([str(PLANT)])
    hmi = connection_settings(inv.host_vars("hmi07.plant.local"), "hmi07.plant.local")
    assert hmi == {
        "host": "hmi07.plant.local",
        "port": 5986,
        "user": None,
        "connection": "winrm",
        "private_key_file": None,
        "password": "hmi-secret",
        "python_interpreter": None,
    }
    gw1 = connection_settings(inv.host_vars("gw-1"), "gw-1")
    assert (gw1["host"], gw1["user"], gw1["password"]) == ("10.0.5.1", "maint", "gw-secret")
    gw2 = connection_settings(inv.host_vars("gw-2"), "gw-2")
    assert (gw2["host"], gw2["port"], gw2["connection"]) == ("10.0.5.2", 2222, "ssh")
