"""The optional per-app modules (nav, dashboard, timeline) are found once."""

from __future__ import annotations

from typing import Any

import pytest

from vigil.core import plugins


def test_app_modules_finds_each_apps_module_once(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins.app_modules.cache_clear()
    calls: list[str] = []
    real = plugins.import_module

    def counting(path: str) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(plugins, "import_module", counting)
    found = plugins.app_modules("dashboard")
    names = [m.__name__ for m in found]
    assert "vigil.alerts.dashboard" in names and "vigil.core.dashboard" in names
    assert "vigil.school.dashboard" not in names  # the app has none
    assert "vigil.school.dashboard" in calls
    tried = len(calls)
    assert plugins.app_modules("dashboard") is found
    assert len(calls) == tried  # a missing module is not looked for again
    labels = {plugins.app_label(m) for m in plugins.app_modules("timeline")}
    assert labels == {"live", "analytics"}
    plugins.app_modules.cache_clear()
