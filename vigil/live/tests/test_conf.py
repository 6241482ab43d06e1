"""The [live] section of vigil.toml: defaults, and clear errors for wrong values."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.conf import ConfigError, load_config


def test_defaults_without_a_file(tmp_path: Path) -> None:
    live = load_config(tmp_path / "vigil.toml").live
    assert live.max_transcodes == 2 and live.h265_live == "transcode"
    assert live.recheck_seconds == 30 and live.token_seconds == 120


def test_values_are_read(tmp_path: Path) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text('[live]\nmax_transcodes = 0\nh265_live = "substream"\n', encoding="utf-8")
    live = load_config(path).live
    assert live.max_transcodes == 0 and live.h265_live == "substream"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("max_transcodes = -1", "live.max_transcodes"),
        ("max_transcodes = 100", "live.max_transcodes"),
        ('h265_live = "always"', "live.h265_live"),
        ("recheck_seconds = 0", "live.recheck_seconds"),
        ("transcode_height = 50", "live.transcode_height"),
        ("token_seconds = 1", "live.token_seconds"),
        ("max_viewers = 3", "unknown key 'live.max_viewers'"),
    ],
)
def test_wrong_values_name_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text(f"[live]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load_config(path)
