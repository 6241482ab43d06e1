from collections import Counter

import pytest

from vigil.accounts.models import User
from vigil.accounts.roles import Role
from vigil.core.demo import seed
from vigil.school.models import Area, Camera, Department, Recorder

pytestmark = pytest.mark.django_db

TB = 10**12


def test_demo_school_matches_the_regulation(demo_site) -> None:
    assert Camera.objects.count() == 86  # Art. 2.2
    assert Camera.objects.in_service().count() == 86
    capacities = sorted(r.capacity_bytes for r in Recorder.objects.prefetch_related("volumes"))
    assert capacities == [6 * TB, 12 * TB, 12 * TB]  # Art. 5
    per_recorder = Counter(Camera.objects.values_list("recorder__code", flat=True))
    assert set(per_recorder) == {"NVR-01", "NVR-02", "NVR-03"}
    assert all(n >= 15 for n in per_recorder.values())
    kinds = set(Area.objects.values_list("kind", flat=True))
    assert {
        "gate",
        "classroom",
        "corridor",
        "stairs",
        "playground",
        "kitchen",
        "hall",
        "office",
        "car_park",
    } <= kinds
    assert Department.objects.filter(is_security_office=True).count() == 1
    assert {u.role for u in User.objects.all()} == set(Role.values)


def test_seed_is_idempotent(demo_site) -> None:
    again = seed()
    assert not again.created
    assert Camera.objects.count() == 86
