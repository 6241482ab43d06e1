"""Set a data directory up for the process tests, from inside it:

    vigil manage shell -c "from vigil.access.tests.scenario import approved_copy; approved_copy()"

records footage of a camera through the recorder's segment writer, files a request,
has the board approve it and (optionally) IT queue its extraction; prints JSON."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from vigil.access import services
from vigil.access.tests.footage import record
from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.school.models import Camera


def approved_copy(
    *,
    code: str = "CAM-001",
    seconds: float = 10.0,
    start: float = 2.0,
    end: float = 6.0,
    who: str = "phuhuynh",
    kind: str = "guardian",
    queue: bool = True,
) -> None:
    t0 = (timezone.now() - timedelta(hours=6)).replace(microsecond=0)
    record(code, t0, seconds)
    users = {u.username: u for u in User.objects.all()}
    req = services.file_request(
        Actor(user=users[who]),
        kind=kind,
        form="copy",
        purpose="Xem lại giờ đón trẻ chiều thứ Hai",
        cameras=[Camera.objects.get(code=code)],
        start=t0 + timedelta(seconds=start),
        end=t0 + timedelta(seconds=end),
        subject="Bé An, lớp C2" if kind == "guardian" else "",
    )
    for name in ("hieutruong", "phohieutruong")[: req.approvals_needed]:
        req = services.approve(Actor(user=users[name]), req)
    out: dict[str, object] = {"request": req.pk, "number": req.number}
    if queue:
        out["job"] = services.create_export(Actor(user=users["admin"]), req).pk
    print(json.dumps(out))
