"""Settings: defaults < config file < PROVISIOND_* environment < overrides (flags)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from provisiond import config
from provisiond.errors import ConfigError


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def write(path: Path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def test_defaults(home):
    settings = config.load({"home": home}, environ={})
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'provisiond.db'}"
    assert settings.secret_key_file == home / "secret.key"
    assert settings.artifacts_dir == home / "artifacts"
    assert (settings.tick_seconds, settings.batch_size, settings.retry_max_attempts) == (120.0, 50, 6)
    assert settings.playbooks_path == ()
    assert settings.panel_dirs() == [config.bundled_dir("playbooks")]
    assert (config.bundled_dir("playbooks") / "cpanel" / "panel.yaml").is_file()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_size = 3


def test_documented_defaults_match_the_real_ones(home):
    text = (config.bundled_dir("config") / "provisiond.yaml").read_text()
    documented = {}
    for name, value in re.findall(r"^# ([a-z_]+): (.+)$", text, re.M):
        documented.setdefault(name, yaml.safe_load(value.replace("<home>", str(home))))
    assert set(documented) == set(config.FIELDS) - {"home"}
    settings = config.load({"home": home}, environ={"PROVISIOND_CONFIG": str(home / "absent.yaml")})
    for name, value in documented.items():
        actual = getattr(settings, name)
        assert (list(actual) if isinstance(actual, tuple) else str(actual) if isinstance(actual, Path)
                else actual) == value, name


def test_default_home_follows_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.load(environ={}).home == tmp_path / "xdg" / "provisiond"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert config.load(environ={}).home == tmp_path / "user" / ".local" / "share" / "provisiond"


@pytest.mark.parametrize("in_file, in_env, override, expected", [
    (None, None, None, 50),
    (5, None, None, 5),
    (None, "7", None, 7),
    (5, "7", None, 7),
    (5, None, 9, 9),
    (None, "7", 9, 9),
    (5, "7", 9, 9),
    (5, "7", "11", 11),     # overrides are coerced too
])
def test_file_then_env_then_overrides(home, tmp_path, in_file, in_env, override, expected):
    environ = {"PROVISIOND_CONFIG": write(tmp_path / "conf.yaml",
                                          {} if in_file is None else {"batch_size": in_file})}
    if in_env is not None:
        environ["PROVISIOND_BATCH_SIZE"] = in_env
    settings = config.load({"home": home, "batch_size": override}, environ=environ)
    assert settings.batch_size == expected and isinstance(settings.batch_size, int)


def test_none_override_keeps_the_env_value(home):
    environ = {"PROVISIOND_DATABASE_URL": "postgresql://p@db/prov"}
    assert config.load({"home": home, "database_url": None}, environ=environ).database_url == \
        "postgresql://p@db/prov"


def test_config_file_in_home_is_read_without_provisiond_config(home):
    write(home / "provisiond.yaml", {"log_level": "DEBUG", "tick_seconds": 5})
    settings = config.load(environ={"PROVISIOND_HOME": str(home)})
    assert (settings.home, settings.log_level, settings.tick_seconds) == (home, "DEBUG", 5.0)


@pytest.mark.parametrize("environ_home, flag_home, expected", [
    ("env", None, "env"),
    (None, "flag", "flag"),
    ("env", "flag", "flag"),      # a flag beats the environment, as for every setting
])
def test_home_precedence(tmp_path, environ_home, flag_home, expected):
    environ = {"PROVISIOND_HOME": str(tmp_path / environ_home)} if environ_home else {}
    overrides = {"home": tmp_path / flag_home} if flag_home else {}
    settings = config.load(overrides, environ=environ)
    assert settings.home == tmp_path / expected
    assert settings.secret_key_file == tmp_path / expected / "secret.key"


@pytest.mark.parametrize("name", ["secret_key_file", "artifacts_dir"])
def test_path_settings_from_env_or_file_are_paths(home, tmp_path, name):
    env = config.load({"home": home}, environ={f"PROVISIOND_{name.upper()}": str(tmp_path / "x")})
    conf = write(tmp_path / "c.yaml", {name: str(tmp_path / "y")})
    from_file = config.load({"home": home}, environ={"PROVISIOND_CONFIG": conf})
    assert getattr(env, name) == tmp_path / "x"
    assert getattr(from_file, name) == tmp_path / "y"
    assert (getattr(env, name).parent, getattr(from_file, name).parent) == (tmp_path, tmp_path)


@pytest.mark.parametrize("content, says", [
    ({"batch_size": 5, "tick_secs": 3}, "unknown setting 'tick_secs'"),
    ("- a\n- b\n", "expected a mapping"),
    ({"batch_size": "lots"}, "setting batch_size: 'lots' is not a valid int"),
    ({"lease_seconds": [1]}, "setting lease_seconds"),
    ({"api_db_pool": 0}, "setting api_db_pool: must be between 1 and 1000, got 0"),
])
def test_bad_config_file_names_the_problem(home, tmp_path, content, says):
    conf = write(tmp_path / "bad.yaml", content)
    with pytest.raises(ConfigError, match=re.escape(says)) as err:
        config.load({"home": home}, environ={"PROVISIOND_CONFIG": conf})
    if "setting " not in says:
        assert conf in str(err.value)


@pytest.mark.parametrize("env_name, value, setting", [
    ("PROVISIOND_BATCH_SIZE", "abc", "batch_size"),
    ("PROVISIOND_FORKS", "2.5", "forks"),
    ("PROVISIOND_TICK_SECONDS", "soon", "tick_seconds"),
    ("PROVISIOND_RETRY_MAX_ATTEMPTS", "", "retry_max_attempts"),
    ("PROVISIOND_API_DB_POOL", "many", "api_db_pool"),
])
def test_bad_number_in_env_names_the_setting(home, env_name, value, setting):
    with pytest.raises(ConfigError, match=f"setting {setting}: "):
        config.load({"home": home}, environ={env_name: value})


@pytest.mark.parametrize("value, expected", [
    ("/a:/b", ("/a", "/b")),
    ("/a::/b:", ("/a", "/b")),
    ("/only", ("/only",)),
    ("", ()),
])
def test_playbooks_path_from_env(home, value, expected):
    settings = config.load({"home": home}, environ={"PROVISIOND_PLAYBOOKS_PATH": value})
    assert settings.playbooks_path == tuple(Path(p) for p in expected)
    assert settings.panel_dirs() == [*map(Path, expected), config.bundled_dir("playbooks")]


def test_playbooks_path_list_in_file(home, tmp_path):
    conf = write(tmp_path / "c.yaml", {"playbooks_path": ["/x", "/y"]})
    settings = config.load({"home": home}, environ={"PROVISIOND_CONFIG": conf})
    assert settings.playbooks_path == (Path("/x"), Path("/y"))


@pytest.mark.parametrize("action, expected", [
    ("create", 100.0), ("terminate", 200.0), ("suspend", 30.0), ("change_package", 30.0),
    ("test_connection", 30.0),
])
def test_timeout_for_action(home, action, expected):
    settings = config.load({"home": home, "timeout_create": 100, "timeout_terminate": "200"},
                           environ={"PROVISIOND_TIMEOUT_DEFAULT": "30"})
    assert settings.timeout_for(action) == expected


@pytest.mark.parametrize("values, says", [
    ({"terminate_after_days": 1_000_000}, "setting terminate_after_days: must be between 0 and 3650"),
    ({"suspend_after_days": -1}, "setting suspend_after_days: must be between 0 and 3650"),
    ({"suspend_after_days": 3651, "terminate_after_days": 3651}, "setting suspend_after_days"),
    ({"suspend_after_days": 20, "terminate_after_days": 10}, "setting terminate_after_days: 10 comes before"),
])
def test_overdue_days_are_bounded_at_the_door(home, tmp_path, values, says):
    conf = write(tmp_path / "days.yaml", values)
    with pytest.raises(ConfigError, match=re.escape(says)):
        config.load({"home": home}, environ={"PROVISIOND_CONFIG": conf})
    env = {f"PROVISIOND_{k.upper()}": str(v) for k, v in values.items()}
    with pytest.raises(ConfigError, match=re.escape(says)):
        config.load({"home": home}, environ=env)
    assert config.load({"home": home}, environ={"PROVISIOND_TERMINATE_AFTER_DAYS": "3650"}).terminate_after_days == 3650


def test_a_billing_webhook_without_a_secret_refuses_to_start_unless_unsigned_on_purpose(home):
    hook = {"PROVISIOND_BILLING_WEBHOOK_URL": "https://billing.example.com/hook"}
    with pytest.raises(ConfigError, match="billing_webhook_secret"):
        config.load({"home": home}, environ=hook)
    unsigned = config.load({"home": home}, environ={**hook, "PROVISIOND_BILLING_WEBHOOK_UNSIGNED": "true"})
    assert unsigned.billing_webhook_unsigned and not unsigned.billing_webhook_secret
    signed = config.load({"home": home}, environ={**hook, "PROVISIOND_BILLING_WEBHOOK_SECRET": "s3cret-key"})
    assert signed.billing_webhook_url


def test_log_format_json_from_the_environment(home):
    assert config.load({"home": home}, environ={}).log_format == "text"
    assert config.load({"home": home}, environ={"PROVISIOND_LOG_FORMAT": "json"}).log_format == "json"


@pytest.mark.parametrize("name, value", [("log_format", "xml"), ("log_level", "LOUD")])
def test_an_unknown_log_format_or_level_names_the_setting(home, name, value):
    with pytest.raises(ConfigError, match=f"setting {name}: '{value}' is not one of"):
        config.load({"home": home}, environ={f"PROVISIOND_{name.upper()}": value})


@pytest.mark.parametrize("name", ["sweep_cron", "sync_cron", "usage_cron"])
def test_a_bad_cron_line_is_refused_naming_the_setting(home, name):
    with pytest.raises(ConfigError, match=f"setting {name}: 'every day' is not a crontab line"):
        config.load({"home": home, name: "every day"}, environ={})


@pytest.mark.parametrize("value", ["0", "257"])
def test_servers_per_run_is_bounded_at_the_door(home, value):
    with pytest.raises(ConfigError, match=re.escape("setting servers_per_run: must be between 1 and 256")):
        config.load({"home": home}, environ={"PROVISIOND_SERVERS_PER_RUN": value})
    assert config.load({"home": home}, environ={"PROVISIOND_SERVERS_PER_RUN": "1"}).servers_per_run == 1
