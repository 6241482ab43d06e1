"""The roles the regulation names (Articles 1-10) plus the people the law gives rights to."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PRINCIPAL = "principal", _("Principal")  # Hiệu trưởng
    BOARD = "board", _("Board member")  # Ban giám hiệu (BGH)
    SECURITY_HEAD = "security_head", _("Security head")  # Tổ trưởng bảo vệ
    SECURITY_GUARD = "security_guard", _("Security guard")  # Nhân viên bảo vệ
    IT_STAFF = "it_staff", _("IT staff")  # Nhân viên CNTT
    FINANCE = "finance", _("Finance officer")  # Kế toán
    DEPARTMENT_HEAD = "department_head", _("Department head")  # Trưởng bộ phận
    STAFF = "staff", _("Teacher / staff")  # Giáo viên, nhân viên
    SUPPLIER_TECHNICIAN = "supplier_technician", _("Supplier technician")  # Kỹ thuật viên NCC
    EXTERNAL_REQUESTER = "external_requester", _("External requester")  # Đơn vị, cá nhân ngoài
    GUARDIAN = "guardian", _("Parent / guardian")  # Phụ huynh


# The board in the regulation's sense: the principal and the board members (BGH).
BOARD_ROLES = frozenset({Role.PRINCIPAL, Role.BOARD})
# People inside the school's organisation, as opposed to outsiders who must ask (Art. 4.2).
INTERNAL_ROLES = frozenset(
    {
        Role.PRINCIPAL,
        Role.BOARD,
        Role.SECURITY_HEAD,
        Role.SECURITY_GUARD,
        Role.IT_STAFF,
        Role.FINANCE,
        Role.DEPARTMENT_HEAD,
        Role.STAFF,
    }
)
