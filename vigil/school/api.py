"""Cameras and the inventory over JSON."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.school import services
from vigil.school.models import Camera, CameraQuerySet

PREFIX = "cameras"
router = Router(tags=["cameras"])


class CameraOut(Schema):
    code: str
    name: str
    area: str
    area_name: str
    department: str
    recorder: str
    main_url: str
    sub_url: str
    has_credential: bool
    codec: str
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    state: str
    inspection_passed: bool
    in_service: bool
    install_date: date | None


class CameraIn(Schema):
    code: str
    name: str
    area: str
    recorder: str
    main_url: str
    sub_url: str = ""
    codec: str = "h264"
    width: int = 1920
    height: int = 1080
    fps: int = 15
    bitrate_kbps: int = 2048
    state: str = "in_service"
    inspection_date: date | None = None


def _out(c: Camera) -> CameraOut:
    passed = getattr(c, "latest_inspection_result", None) == "passed"
    return CameraOut(
        code=c.code,
        name=c.name,
        area=c.area.code,
        area_name=c.area.name,
        department=c.area.department.code,
        recorder=c.recorder.code,
        main_url=c.main_url,
        sub_url=c.sub_url,
        has_credential=c.credential_id is not None,
        codec=c.codec,
        width=c.width,
        height=c.height,
        fps=c.fps,
        bitrate_kbps=c.bitrate_kbps,
        state=c.state,
        inspection_passed=passed,
        in_service=passed and c.state == Camera.State.IN_SERVICE,
        install_date=c.install_date,
    )


def _qs() -> CameraQuerySet:
    return Camera.objects.with_inspection().select_related("area", "area__department", "recorder")


@router.get("/", response=list[CameraOut])
def list_cameras(request: HttpRequest) -> list[CameraOut]:
    require(Actor.from_request(request, via="api"), Action.SITE_VIEW)
    return [_out(c) for c in _qs().order_by("code")]


@router.get("/{code}", response=CameraOut)
def get_camera(request: HttpRequest, code: str) -> CameraOut:
    camera = get_object_or_404(_qs(), code=code)
    require(Actor.from_request(request, via="api"), Action.SITE_VIEW, camera)
    return _out(camera)


@router.post("/", response={201: CameraOut})
def add_camera(request: HttpRequest, payload: CameraIn) -> Status[CameraOut]:
    data = payload.dict()
    if data["inspection_date"]:
        data["inspection_result"] = "passed"
    camera = services.add_camera(Actor.from_request(request, via="api"), data)
    return Status(201, _out(_qs().get(pk=camera.pk)))
