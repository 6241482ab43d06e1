from pathlib import Path

import pytest

from vigil.conf import ConfigError, load_config


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "vigil.toml")
    assert cfg.retention.floor_days == 20
    assert cfg.security.lockout_failures == 5
    assert cfg.site.time_zone == "Asia/Ho_Chi_Minh"


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text("[security]\nidle_timeout_minutes = 15\nlockout_falures = 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert "vigil.toml" in message
    assert "unknown key 'security.lockout_falures'" in message


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text("[recordings]\nsegment_seconds = 10\n")
    with pytest.raises(ConfigError, match="unknown key 'recordings'"):
        load_config(path)


def test_wrong_type_and_range(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text('[server]\nport = "eighty"\n[retention]\nfloor_days = 0\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "server.port" in str(exc.value)
    assert "retention.floor_days" in str(exc.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text("[server\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_valid_overrides(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text("[access]\nguard_playback_hours = 48\n[site]\nlanguage = 'en'\n")
    cfg = load_config(path)
    assert cfg.access.guard_playback_hours == 48
    assert cfg.site.language == "en"
