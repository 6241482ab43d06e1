import pytest

from vigil.alerts.models import Alert
from vigil.alerts.services import clear_alert, raise_alert
from vigil.school.models import Camera

pytestmark = pytest.mark.django_db


def test_one_open_alert_per_subject_and_cause(demo_site) -> None:  # type: ignore[no-untyped-def]
    cam = Camera.objects.get(code="CAM-001")
    first, new = raise_alert(
        cause="camera_offline", severity="warning", title="offline", camera=cam
    )
    again, new2 = raise_alert(
        cause="camera_offline", severity="critical", title="offline", camera=cam
    )
    assert new and not new2
    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.occurrences == 2 and again.severity == "critical"
    assert again.department == cam.area.department
    other, new3 = raise_alert(
        cause="tamper_covered", severity="critical", title="covered", camera=cam
    )
    assert new3 and other.pk != first.pk
    assert clear_alert(cause="camera_offline", camera=cam) == 1
    reopened, new4 = raise_alert(
        cause="camera_offline", severity="warning", title="offline", camera=cam
    )
    assert new4 and reopened.pk != first.pk
    assert Alert.objects.filter(cause="camera_offline").count() == 2


def test_site_wide_alerts_deduplicate_too(demo_site) -> None:  # type: ignore[no-untyped-def]
    a, _ = raise_alert(cause="storage_floor_at_risk", severity="critical", title="x")
    b, new = raise_alert(cause="storage_floor_at_risk", severity="critical", title="x")
    assert a.pk == b.pk and not new
