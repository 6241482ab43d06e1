"""``vigil storage``: the capacity plan and the state of each volume."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone, translation

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.core.commands import PagelessCommand
from vigil.retention import capacity, planner
from vigil.retention.volumes import capacities, free_space, state_of


def _tb(n: float) -> str:
    return f"{n / 1e12:.2f} TB" if n >= 1e11 else f"{n / 1e9:.1f} GB"


def _days(d: float) -> str:
    return "∞" if d >= planner.INFINITE_DAYS else f"{d:.1f}"


def _local(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d") if moment else "—"


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


class Command(PagelessCommand):
    help = "Capacity plan (projected retention per camera and recorder) and volume status."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{plan,status}")
        plan = sub.add_parser(
            "plan",
            help="how many days each camera gets on the recorders, and a better assignment",
        )
        plan.add_argument(
            "--add-camera",
            action="append",
            default=[],
            metavar="RECORDER:KBPS",
            help="what if: one more camera of this bitrate on this recorder (repeatable)",
        )
        plan.add_argument(
            "--remove-camera",
            action="append",
            default=[],
            metavar="CODE",
            help="what if: without this camera (repeatable)",
        )
        plan.add_argument(
            "--reserve", type=float, default=None, help="percent kept free (default: config)"
        )
        plan.add_argument(
            "--declared",
            action="store_true",
            help="plan with the declared volume sizes even where the real disk is smaller",
        )
        plan.add_argument(
            "--tolerance",
            type=float,
            default=0.25,
            help="days of minimum retention worth giving up to move fewer cameras",
        )
        plan.add_argument("--cameras", action="store_true", help="list every camera")
        plan.add_argument("--format", choices=["table", "json"], default="table")
        status = sub.add_parser("status", help="free space, usage and pauses per volume")
        status.add_argument("--format", choices=["table", "json"], default="table")

    def handle(self, *args: Any, **opts: Any) -> None:
        with translation.override("en"):  # the command line speaks English, like vigil's others
            self._handle(opts)

    def _handle(self, opts: dict[str, Any]) -> None:
        require(Actor.cli(), Action.STORAGE_VIEW)
        if opts["action"] == "status":
            self._status(opts)
            return
        try:
            what_if = capacity.WhatIf.parse(opts["add_camera"], opts["remove_camera"])
            plan = capacity.build_plan(
                what_if,
                reserve_percent=opts["reserve"],
                declared_only=opts["declared"],
                tolerance_days=opts["tolerance"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["format"] == "json":
            self.stdout.write(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2))
        else:
            self._print_plan(plan, show_cameras=opts["cameras"])
        if not plan.holds_floor:
            raise CommandError("this configuration cannot hold the retention floor")

    def _print_plan(self, plan: capacity.Plan, *, show_cameras: bool) -> None:
        w = self.stdout.write
        basis = "declared sizes" if plan.capacity_basis == "declared" else "real sizes"
        w(
            f"Storage plan — floor {plan.floor_days} days, reserve {plan.reserve_percent:g} % "
            f"free, {basis}"
        )
        if plan.what_if["add"] or plan.what_if["remove"]:
            w(
                "What if: add "
                + (", ".join(plan.what_if["add"]) or "nothing")
                + "; remove "
                + (", ".join(plan.what_if["remove"]) or "nothing")
            )
        w("")
        rows = []
        for r in plan.recorders:
            rows.append(
                [
                    r.code,
                    str(r.cameras),
                    _tb(r.declared_bytes),
                    _tb(r.effective_bytes) + (" *" if r.limited_by_fs else ""),
                    _tb(r.usable_bytes),
                    _tb(r.used_bytes),
                    f"{r.bytes_per_day / 1e9:.1f} GB",
                    _days(r.projected_days),
                    _days(r.projected_days_declared),
                    "yes" if r.holds_floor else "NO",
                    _local(r.breach_date) if not r.holds_floor else "—",
                ]
            )
        for line in table(
            rows,
            [
                "RECORDER",
                "CAMERAS",
                "DECLARED",
                "REAL",
                "USABLE",
                "USED",
                "PER DAY",
                "DAYS",
                "DAYS@DECLARED",
                "FLOOR",
                "BREACH ON",
            ],
        ):
            w(line)
        if any(r.limited_by_fs for r in plan.recorders):
            w("* the real filesystem is smaller than declared: planned with the real size")
        sources: dict[str, int] = {}
        for c in plan.cameras:
            sources[c.rate_source] = sources.get(c.rate_source, 0) + 1
        w("Bitrates: " + ", ".join(f"{n} {s}" for s, n in sorted(sources.items())))
        at_risk = [c for c in plan.cameras if not c.holds_floor and not c.what_if]
        shown = [c for c in plan.cameras if c.what_if]
        if show_cameras:
            shown = plan.cameras
        elif 0 < len(at_risk) <= 20:
            shown = at_risk + shown
        elif at_risk:
            w(f"{len(at_risk)} cameras cannot hold the floor (--cameras lists every camera)")
        if shown:
            w("")
            crow = [
                [
                    c.code,
                    c.recorder,
                    f"{c.kbps:.0f}",
                    c.rate_source,
                    str(c.floor_days),
                    str(c.ceiling_days or "—"),
                    _days(c.projected_days),
                    "yes" if c.holds_floor else "NO",
                    c.proposed_recorder,
                ]
                for c in shown
            ]
            header = ["CAMERA", "RECORDER", "KBIT/S", "SOURCE", "FLOOR", "CEILING", "DAYS"]
            for line in table(crow, [*header, "FLOOR OK", "PROPOSED"]):
                w(line)
        w("")
        w(
            f"Proposed assignment: minimum {_days(plan.proposed_minimum_days)} days "
            f"(now {_days(plan.current_minimum_days)}; no assignment can exceed "
            f"{_days(plan.upper_bound_days)}), {len(plan.moves)} camera(s) to move"
        )
        for r in plan.recorders:
            w(f"  {r.code}: {r.proposed_cameras} cameras, {_days(r.proposed_days)} days")
        for m in plan.moves:
            w(f"  move {m['camera']}: {m['from']} → {m['to']}")
        w("Algorithm: " + plan.algorithm)
        for note in plan.notes:
            w("Note: " + note)

    def _status(self, opts: dict[str, Any]) -> None:
        from vigil.school.models import StorageVolume

        vols = list(
            StorageVolume.objects.select_related("recorder").order_by("recorder__code", "label")
        )
        caps = capacities(vols)
        out: list[dict[str, Any]] = []
        for v in vols:
            cap = caps[v.pk]
            free = free_space(cap)
            state = state_of(v)
            out.append(
                {
                    "volume": str(v),
                    "path": v.path,
                    "declared_bytes": v.capacity_bytes,
                    "effective_bytes": cap.effective,
                    "used_bytes": free.used,
                    "free_bytes": free.free,
                    "real_free_bytes": free.real,
                    "recording_paused": state.recording_paused,
                    "last_sweep_at": state.last_sweep_at.isoformat()
                    if state.last_sweep_at
                    else None,
                    "floor_at_risk": bool(state.last_sweep.get("floor_at_risk")),
                    "note": cap.note,
                }
            )
        if opts["format"] == "json":
            self.stdout.write(json.dumps(out, indent=2))
            return
        rows = [
            [
                o["volume"],
                _tb(o["effective_bytes"]),
                _tb(o["used_bytes"]),
                _tb(o["free_bytes"]),
                "PAUSED" if o["recording_paused"] else "recording",
                "AT RISK" if o["floor_at_risk"] else "ok",
                o["last_sweep_at"] or "never",
            ]
            for o in out
        ]
        for line in table(
            rows, ["VOLUME", "CAPACITY", "USED", "FREE", "STATE", "FLOOR", "LAST SWEEP"]
        ):
            self.stdout.write(line)
