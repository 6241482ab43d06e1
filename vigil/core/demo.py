"""The demo school: Phúc Đồng kindergarten with its 86 cameras on three recorders.

Everything is made up except the structure, which follows the school's camera
regulation: 86 cameras (Art. 2.2), recorders of 12, 12 and 6 TB (Art. 5), areas owned by
departments with the security office answering for the rest (Art. 6), one account per
role. Passwords are random (no default passwords: QCVN 135:2024) and printed once.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from vigil.accounts.actor import Actor
from vigil.accounts.models import User
from vigil.accounts.roles import Role
from vigil.accounts.services import generate_password
from vigil.audit.services import record
from vigil.school import vault
from vigil.school.models import (
    Area,
    Camera,
    Department,
    Inspection,
    Recorder,
    School,
    StorageVolume,
    StreamCredential,
    Supplier,
)

TB = 10**12
SIMULATOR_PORT = 8554

DEPARTMENTS = [
    ("BGH", "Ban giám hiệu", Department.Kind.BOARD, False),
    ("BV", "Tổ bảo vệ", Department.Kind.SECURITY, True),
    ("CNTT", "Bộ phận công nghệ thông tin", Department.Kind.IT, False),
    ("TCKT", "Phòng tài chính kế toán", Department.Kind.FINANCE, False),
    ("NT", "Tổ chuyên môn Nhà trẻ", Department.Kind.TEACHING, False),
    ("MG", "Tổ chuyên môn Mẫu giáo", Department.Kind.TEACHING, False),
    ("ND", "Tổ nuôi dưỡng (bếp ăn)", Department.Kind.KITCHEN, False),
    ("VP", "Văn phòng nhà trường", Department.Kind.OFFICE, False),
    ("YT", "Phòng y tế", Department.Kind.MEDICAL, False),
]

# (code, name, kind, building, department, cameras, recorder, kbit/s)
AREAS = [
    ("CONG-CHINH", "Cổng chính", Area.Kind.GATE, "Khuôn viên", "BV", 4, "NVR-01", 1536),
    ("CONG-PHU", "Cổng phụ", Area.Kind.GATE, "Khuôn viên", "BV", 2, "NVR-01", 1536),
    ("BAI-XE", "Nhà để xe", Area.Kind.CAR_PARK, "Khuôn viên", "BV", 4, "NVR-01", 1536),
    ("SAN-CHOI", "Sân chơi", Area.Kind.PLAYGROUND, "Khuôn viên", "BV", 10, "NVR-01", 1536),
    ("HL-T1", "Hành lang tầng 1", Area.Kind.CORRIDOR, "Nhà A, tầng 1", "BV", 5, "NVR-01", 1280),
    ("CT-A", "Cầu thang A", Area.Kind.STAIRS, "Nhà A", "BV", 3, "NVR-01", 1280),
    ("CT-B", "Cầu thang B", Area.Kind.STAIRS, "Nhà B", "BV", 3, "NVR-01", 1280),
    ("HOI-TRUONG", "Hội trường", Area.Kind.HALL, "Nhà B, tầng 3", "VP", 3, "NVR-01", 1280),
    ("LOP-D1", "Lớp Nhà trẻ D1", Area.Kind.CLASSROOM, "Nhà A, tầng 1", "NT", 2, "NVR-02", 1280),
    ("LOP-D2", "Lớp Nhà trẻ D2", Area.Kind.CLASSROOM, "Nhà A, tầng 1", "NT", 2, "NVR-02", 1280),
    ("LOP-D3", "Lớp Nhà trẻ D3", Area.Kind.CLASSROOM, "Nhà A, tầng 1", "NT", 2, "NVR-02", 1280),
    ("LOP-C1", "Lớp Mẫu giáo bé C1", Area.Kind.CLASSROOM, "Nhà A, tầng 2", "MG", 2, "NVR-02", 1280),
    ("LOP-C2", "Lớp Mẫu giáo bé C2", Area.Kind.CLASSROOM, "Nhà A, tầng 2", "MG", 2, "NVR-02", 1280),
    ("LOP-C3", "Lớp Mẫu giáo bé C3", Area.Kind.CLASSROOM, "Nhà A, tầng 2", "MG", 2, "NVR-02", 1280),
    ("LOP-C4", "Lớp Mẫu giáo bé C4", Area.Kind.CLASSROOM, "Nhà A, tầng 2", "MG", 2, "NVR-02", 1280),
    (
        "LOP-B1",
        "Lớp Mẫu giáo nhỡ B1",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 1",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-B2",
        "Lớp Mẫu giáo nhỡ B2",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 1",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-B3",
        "Lớp Mẫu giáo nhỡ B3",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 1",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-B4",
        "Lớp Mẫu giáo nhỡ B4",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 1",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-A1",
        "Lớp Mẫu giáo lớn A1",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 2",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-A2",
        "Lớp Mẫu giáo lớn A2",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 2",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-A3",
        "Lớp Mẫu giáo lớn A3",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 2",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    (
        "LOP-A4",
        "Lớp Mẫu giáo lớn A4",
        Area.Kind.CLASSROOM,
        "Nhà B, tầng 2",
        "MG",
        2,
        "NVR-02",
        1280,
    ),
    ("PHONG-NK", "Phòng năng khiếu", Area.Kind.CLASSROOM, "Nhà B, tầng 3", "MG", 2, "NVR-02", 1280),
    ("VAN-PHONG", "Văn phòng", Area.Kind.OFFICE, "Nhà A, tầng 1", "VP", 2, "NVR-02", 1280),
    ("HL-T2", "Hành lang tầng 2", Area.Kind.CORRIDOR, "Nhà A, tầng 2", "BV", 5, "NVR-03", 1280),
    ("HL-T3", "Hành lang tầng 3", Area.Kind.CORRIDOR, "Nhà B, tầng 3", "BV", 4, "NVR-03", 1280),
    ("BEP", "Bếp ăn", Area.Kind.KITCHEN, "Nhà C", "ND", 4, "NVR-03", 1280),
    ("KHO-TP", "Kho thực phẩm", Area.Kind.KITCHEN, "Nhà C", "ND", 2, "NVR-03", 1280),
    ("PHONG-KT", "Phòng kế toán", Area.Kind.OFFICE, "Nhà A, tầng 1", "TCKT", 1, "NVR-03", 1280),
    ("PHONG-YT", "Phòng y tế", Area.Kind.OFFICE, "Nhà A, tầng 1", "YT", 1, "NVR-03", 1280),
    (
        "PHONG-MAY",
        "Phòng máy chủ camera",
        Area.Kind.TECHNICAL,
        "Nhà A, tầng 1",
        "CNTT",
        1,
        "NVR-03",
        1280,
    ),
]

RECORDERS = [
    ("NVR-01", "Đầu ghi 1 (khuôn viên, cổng)", 12 * TB, "Phòng máy chủ camera"),
    ("NVR-02", "Đầu ghi 2 (lớp học)", 12 * TB, "Phòng máy chủ camera"),
    ("NVR-03", "Đầu ghi 3 (hành lang, bếp, phòng chức năng)", 6 * TB, "Phòng máy chủ camera"),
]

POSITIONS = ["góc trái", "góc phải", "cửa vào", "phía trong", "toàn cảnh"]
# Outdoor cameras are newer H.265 models; indoor ones older H.264 (a common mix).
H265_AREA_KINDS = {Area.Kind.GATE, Area.Kind.CAR_PARK, Area.Kind.PLAYGROUND}
CAMERA_USER = "vigil"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    full_name: str
    department: str | None
    organisation: str = ""


USERS = [
    DemoUser("hieutruong", Role.PRINCIPAL, "Nguyễn Thị Hồng", "BGH"),
    DemoUser("phohieutruong", Role.BOARD, "Trần Thị Mai", "BGH"),
    DemoUser("totruongbv", Role.SECURITY_HEAD, "Lê Văn Hùng", "BV"),
    DemoUser("baove", Role.SECURITY_GUARD, "Phạm Văn Nam", "BV"),
    DemoUser("admin", Role.IT_STAFF, "Đỗ Minh Tuấn", "CNTT"),
    DemoUser("ketoan", Role.FINANCE, "Vũ Thị Lan", "TCKT"),
    DemoUser("totruongmg", Role.DEPARTMENT_HEAD, "Hoàng Thị Thu", "MG"),
    DemoUser("giaovien", Role.STAFF, "Bùi Thị Hoa", "MG"),
    DemoUser("kythuat", Role.SUPPLIER_TECHNICIAN, "Ngô Văn Đức", None, "Công ty TNHH An Ninh Việt"),
    DemoUser(
        "nghiencuu", Role.EXTERNAL_REQUESTER, "Đặng Quốc Bảo", None, "Trường ĐH Sư phạm Hà Nội"
    ),
    DemoUser("phuhuynh", Role.GUARDIAN, "Lý Văn Khánh", None, "Phụ huynh lớp C2"),
]


@dataclass
class SeededUser:
    username: str
    role: str
    full_name: str
    password: str
    totp_secret: str | None


@dataclass
class DemoResult:
    created: bool
    cameras: int
    users: list[SeededUser]
    credentials_file: Path | None


def simulator_url(code: str, stream: str, port: int = SIMULATOR_PORT) -> str:
    return f"rtsp://127.0.0.1:{port}/cam/{code}/{stream}"


def camera_layout() -> list[dict[str, object]]:
    """The 86 demo cameras as plain values (used by the seeder and the simulator)."""
    cams: list[dict[str, object]] = []
    n = 0
    for code, name, kind, _building, _dept, count, recorder, kbps in AREAS:
        for i in range(count):
            n += 1
            cams.append(
                {
                    "code": f"CAM-{n:03d}",
                    "name": f"{name} – {POSITIONS[i % len(POSITIONS)]}" if count > 1 else name,
                    "area": code,
                    "recorder": recorder,
                    "bitrate_kbps": kbps,
                    "codec": "h265" if kind in H265_AREA_KINDS else "h264",
                }
            )
    return cams


def demo_selection(count: int) -> list[str]:
    """The demo cameras that are simulated and recorded: spread evenly over all 86, so
    every recorder and most kinds of area are represented."""
    codes = [str(c["code"]) for c in camera_layout()]
    count = max(1, min(len(codes), count))
    return [codes[(i * len(codes)) // count] for i in range(count)]


def seed(volume_root: Path | None = None) -> DemoResult:
    """Create the demo school once; a second call changes nothing."""
    if School.objects.filter(is_demo=True).exists():
        return DemoResult(False, Camera.objects.count(), [], None)
    if Camera.objects.exists() or User.objects.exists():
        raise RuntimeError(
            "this database already holds a site that is not the demo; "
            "use a new VIGIL_DATA_DIR for the demo"
        )
    root = volume_root or settings.PATHS.volumes
    today = date.today()
    actor = Actor.system("demo")
    with transaction.atomic():
        school = School.objects.create(
            name="Trường mầm non Phúc Đồng",
            short_name="MN Phúc Đồng",
            address="Phường Phúc Đồng, quận Long Biên, Hà Nội",
            regulation_title=(
                "Quy chế quản lý, sử dụng và xử lý thông tin từ hệ thống camera giám sát"
            ),
            is_demo=True,
        )
        depts = {}
        for dcode, dname, dkind, office in DEPARTMENTS:
            depts[dcode] = Department.objects.create(
                code=dcode, name=dname, kind=dkind, is_security_office=office
            )
        supplier = Supplier.objects.create(
            code="NCC-ANV",
            name="Công ty TNHH An Ninh Việt",
            contact_person="Ngô Văn Đức",
            phone="024 3000 0000",
            email="kythuat@anninhviet.example",
            contract_reference="HĐ 12/2022/BT-CAM",
        )
        recorders = {}
        for code, name, capacity, location in RECORDERS:
            rec = Recorder.objects.create(
                code=code, name=name, model="Vigil node", location=location
            )
            path = root / code.lower()
            StorageVolume.objects.create(
                recorder=rec, label="disk1", path=str(path), capacity_bytes=capacity
            )
            recorders[code] = rec
        areas = {}
        for code, name, kind, building, dept, *_rest in AREAS:
            areas[code] = Area.objects.create(
                code=code, name=name, kind=kind, building=building, department=depts[dept]
            )
        install = date(2022, 8, 15)
        # The simulated cameras share one random login (the simulator serves one user).
        camera_password = vault.encrypt(generate_password(16))
        for cam in camera_layout():
            code = str(cam["code"])
            cred = StreamCredential.objects.create(
                username=CAMERA_USER, password_encrypted=camera_password
            )
            camera = Camera.objects.create(
                code=code,
                name=str(cam["name"]),
                area=areas[str(cam["area"])],
                recorder=recorders[str(cam["recorder"])],
                main_url=simulator_url(code, "main"),
                sub_url=simulator_url(code, "sub"),
                credential=cred,
                manufacturer="Hikvision",
                model="DS-2CD2143G2-I",
                codec=str(cam["codec"]),
                width=1920,
                height=1080,
                fps=15,
                bitrate_kbps=int(str(cam["bitrate_kbps"])),
                sub_codec=Camera.Codec.H264,
                supplier=supplier,
                install_date=install,
                state=Camera.State.IN_SERVICE,
                position_notes=str(cam["name"]),
            )
            Inspection.objects.create(
                camera=camera,
                inspected_on=today - timedelta(days=90),
                result=Inspection.Result.PASSED,
                inspector="Trung tâm Kiểm định (mô phỏng)",
                certificate=f"KĐ-{today.year}-{code}",
            )
        users = []
        for du in USERS:
            password = generate_password()
            user = User(
                username=du.username,
                role=du.role,
                full_name=du.full_name,
                department=depts[du.department] if du.department else None,
                organisation=du.organisation,
                email=f"{du.username}@phucdong.example",
            )
            if du.role == Role.IT_STAFF:
                user.is_staff = True
                user.is_superuser = True
            user.set_password(password)
            user.save()
            secret = None
            if user.requires_two_factor:
                device = TOTPDevice.objects.create(user=user, name="Vigil demo", confirmed=True)
                secret = base64.b32encode(device.bin_key).decode("ascii")
            users.append(
                SeededUser(du.username, str(du.role.label), du.full_name, password, secret)
            )
        record(
            actor,
            "demo.seed",
            school,
            detail={"cameras": Camera.objects.count(), "users": len(users)},
        )
    for rec in Recorder.objects.all():
        for vol in rec.volumes.all():
            Path(vol.path).mkdir(parents=True, exist_ok=True)
    cred_file = _write_credentials(users)
    return DemoResult(True, Camera.objects.count(), users, cred_file)


def _write_credentials(users: list[SeededUser]) -> Path:
    path = Path(settings.PATHS.root) / "demo-credentials.txt"
    lines = ["# Vigil demo accounts (made-up people). Keep this file private.", ""]
    for u in users:
        lines.append(f"{u.username:<15} {u.password:<18} {u.role} — {u.full_name}")
        if u.totp_secret:
            lines.append(f"{'':<15} TOTP secret: {u.totp_secret}")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path
