"""``vigil retention``: the retention sweep, coverage records, reports, signatures, policy."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone, translation

from vigil.accounts.actor import Actor
from vigil.authz.rules import Action
from vigil.authz.services import require
from vigil.core.commands import PagelessCommand
from vigil.retention import coverage, policy, reports, services
from vigil.retention.management.commands.storage import table
from vigil.retention.models import CameraPolicy, CoverageReport
from vigil.school.models import Camera, StorageVolume
from vigil.school.validation import ValidationFailed

COVERAGE_EVERY = 3600.0  # seconds between coverage updates in --loop


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"'{text}' is not a date (YYYY-MM-DD)") from None


class Command(PagelessCommand):
    help = "Retention sweep, coverage records and signed reports, retention policy."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{sweep,coverage,report,sign,verify,policy,holds}",
        )
        sw = sub.add_parser("sweep", help="delete footage past its time, keep space free")
        mode = sw.add_mutually_exclusive_group()
        mode.add_argument("--once", action="store_true", help="one sweep of every volume (default)")
        mode.add_argument(
            "--loop",
            action="store_true",
            help="sweep every [retention] sweep_interval_seconds; update coverage and sign "
            "finished days hourly",
        )
        sw.add_argument("--volume", default="", metavar="RECORDER:LABEL", help="only this volume")
        sw.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
        sw.add_argument("--interval", type=float, default=None, help="seconds between sweeps")
        sw.add_argument("--format", choices=["table", "json"], default="table")

        cov = sub.add_parser("coverage", help="compute per camera-day coverage records")
        cov.add_argument("--from", dest="first", default="", metavar="YYYY-MM-DD")
        cov.add_argument("--to", dest="last", default="", metavar="YYYY-MM-DD")

        rep = sub.add_parser("report", help="the coverage report for a range of days")
        rep.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD")
        rep.add_argument("--to", dest="last", default="", metavar="YYYY-MM-DD")
        rep.add_argument("--format", choices=["table", "csv", "pdf", "json"], default="table")
        rep.add_argument("--output", type=Path, help="write to this file (needed for pdf)")
        rep.add_argument("--recompute", action="store_true", help="recompute unsigned days")

        sign = sub.add_parser("sign", help="sign finished days' coverage reports")
        sign.add_argument(
            "--day", default="", metavar="YYYY-MM-DD", help="default: every finished day"
        )

        ver = sub.add_parser("verify", help="check a stored or exported report's signature")
        ver.add_argument(
            "file", nargs="?", type=Path, help="an exported report (.json, .csv, .pdf)"
        )
        ver.add_argument(
            "--day", default="", metavar="YYYY-MM-DD", help="the stored report of a day"
        )
        ver.add_argument("--format", choices=["table", "json"], default="table")

        pol = sub.add_parser("policy", help="show or set the retention floor and ceiling")
        pol.add_argument("--camera", default="", help="a camera's own policy instead of the site's")
        pol.add_argument("--floor", default=None, help="days (empty string: inherit)")
        pol.add_argument("--ceiling", default=None, help="days (empty string: none)")

        sub.add_parser("holds", help="list active evidence holds")

    def handle(self, *args: Any, **opts: Any) -> None:
        with translation.override("en"):  # the command line speaks English, like vigil's others
            self._handle(opts)

    def _handle(self, opts: dict[str, Any]) -> None:
        action = opts["action"]
        getattr(self, f"_{action}")(opts)

    # ------------------------------------------------------------------- sweep

    def _volumes(self, spec: str) -> list[StorageVolume]:
        qs = StorageVolume.objects.select_related("recorder").order_by("recorder__code", "label")
        if not spec:
            return list(qs)
        recorder, _sep, label = spec.partition(":")
        found = list(qs.filter(recorder__code=recorder, **({"label": label} if label else {})))
        if not found:
            raise CommandError(f"no volume '{spec}' (use RECORDER:LABEL, e.g. NVR-01:disk1)")
        return found

    def _sweep(self, opts: dict[str, Any]) -> None:
        from django.conf import settings

        require(Actor.cli(), Action.STORAGE_VIEW)
        actor = Actor.system("retention")
        finished = services.finish_interrupted_deletions()
        if finished:
            self.stdout.write(f"finished {finished} interrupted deletion(s)")
        volumes = self._volumes(opts["volume"])
        if not opts["loop"]:
            results = [services.sweep(v, actor=actor, dry_run=opts["dry_run"]) for v in volumes]
            self._print_sweeps(results, opts["format"])
            if any(r.floor_at_risk for r in results):
                sys.exit(3)
            return
        interval = opts["interval"] or settings.VIGIL.retention.sweep_interval_seconds
        stopping = False

        def stop(*_args: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        next_coverage = 0.0
        self.stdout.write(f"retention sweep every {interval:g} s on {len(volumes)} volume(s)")
        while not stopping:
            started = time.monotonic()
            for v in volumes:
                try:
                    result = services.sweep(v, actor=actor, dry_run=opts["dry_run"])
                except Exception as exc:  # one bad volume must not stop the others
                    self.stderr.write(f"{v}: sweep failed: {exc}")
                    continue
                if result.deleted_segments or result.ceiling_segments or result.floor_at_risk:
                    self.stdout.write(result.summary())
            if time.monotonic() >= next_coverage:
                next_coverage = time.monotonic() + COVERAGE_EVERY
                self._hourly(actor)
            while not stopping and time.monotonic() - started < interval:
                time.sleep(min(0.5, interval))
        self.stdout.write("retention sweep stopped")

    def _hourly(self, actor: Actor) -> None:
        today = coverage.local_day(timezone.now())
        try:
            for day in (today - timedelta(days=1), today):
                coverage.compute_day(day)
            for report in reports.sign_completed_days(actor=actor):
                self.stdout.write(f"signed the coverage report of {report.day}: {report.digest}")
        except Exception as exc:
            self.stderr.write(f"coverage update failed: {exc}")

    def _print_sweeps(self, results: list[services.SweepResult], fmt: str) -> None:
        if fmt == "json":
            self.stdout.write(json.dumps([r.to_dict() for r in results], indent=2, default=str))
            return
        for r in results:
            self.stdout.write(r.summary())

    # ---------------------------------------------------------------- coverage

    def _range(self, opts: dict[str, Any]) -> tuple[date, date]:
        today = coverage.local_day(timezone.now())
        first = _day(opts["first"]) if opts.get("first") else today
        last = _day(opts["last"]) if opts.get("last") else first
        if last < first:
            raise CommandError("--to is before --from")
        return first, last

    def _coverage(self, opts: dict[str, Any]) -> None:
        require(Actor.cli(), Action.RETENTION_REPORT)
        first, last = self._range(opts)
        for day in coverage.days_between(first, last):
            rows = coverage.compute_day(day)
            missed = sum(1 for r in rows if not r.floor_met)
            self.stdout.write(f"{day}: {len(rows)} camera(s), floor missed on {missed}")

    def _report(self, opts: dict[str, Any]) -> None:
        actor = Actor.cli()
        require(actor, Action.RETENTION_REPORT)
        first, last = self._range(opts)
        try:
            data = reports.report_data(first, last, recompute=opts["recompute"])
        except reports.ReportError as exc:
            raise CommandError(str(exc)) from exc
        fmt = opts["format"]
        output: Path | None = opts["output"]
        if fmt == "pdf":
            if output is None:
                raise CommandError("--format pdf needs --output FILE")
            output.write_bytes(reports.render_pdf(data))
            self.stdout.write(f"wrote {output} ({len(data.rows)} camera-days)")
            return
        if fmt == "csv":
            text = reports.render_csv(data)
        elif fmt == "json":
            text = reports.render_json(data)
        else:
            text = self._table(data)
        if output is not None:
            output.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {output} ({len(data.rows)} camera-days)")
        else:
            self.stdout.write(text, ending="" if text.endswith("\n") else "\n")

    def _table(self, data: reports.ReportData) -> str:
        rows = [
            [
                r["day"],
                r["camera"],
                r["recorder"],
                reports._hms(r["recorded_seconds"]),
                reports._percent(r),
                ", ".join(f"{k} {reports._hms(v)}" for k, v in r["gaps"].items()) or "—",
                reports._local(r["oldest_footage"]) or "—",
                ("yes" if r["floor_met"] else "NO") + f" ({r['floor_days']}d)",
            ]
            for r in data.rows
        ]
        header = ["DAY", "CAMERA", "RECORDER", "RECORDED", "COVER%", "GAPS", "OLDEST FOOTAGE"]
        lines = table(rows, [*header, "FLOOR MET"])
        for day in sorted(data.signed):
            lines.append(f"signed {day}: sha256 {data.signed[day].digest}")
        return "\n".join(lines) + "\n"

    def _sign(self, opts: dict[str, Any]) -> None:
        actor = Actor.cli()
        require(actor, Action.RETENTION_REPORT)
        try:
            if opts["day"]:
                signed = [reports.sign_day(_day(opts["day"]), actor=actor)]
            else:
                signed = reports.sign_completed_days(actor=actor)
        except reports.ReportError as exc:
            raise CommandError(str(exc)) from exc
        for r in signed:
            self.stdout.write(f"{r.day}: sha256 {r.digest} (key {r.key_fingerprint})")
        if not signed:
            self.stdout.write("nothing to sign")

    def _verify(self, opts: dict[str, Any]) -> None:
        require(Actor.cli(), Action.RETENTION_REPORT)
        if opts["file"] is not None:
            path: Path = opts["file"]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{path}: {exc.strerror}") from exc
            result = reports.verify_file(data, str(path))
        elif opts["day"]:
            report = CoverageReport.objects.filter(day=_day(opts["day"])).first()
            if report is None:
                raise CommandError(f"no signed report for {opts['day']}")
            result = reports.verify_stored(report)
        else:
            raise CommandError("give a FILE or --day")
        if opts["format"] == "json":
            self.stdout.write(json.dumps(result.to_dict(), indent=2))
        else:
            for c in result.checks:
                self.stdout.write(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
            self.stdout.write(
                f"{result.subject}: "
                + ("the report matches its signature" if result.ok else "NOT VALID")
            )
        if not result.ok:
            sys.exit(1)

    # -------------------------------------------------------------- policy, holds

    def _policy(self, opts: dict[str, Any]) -> None:
        actor = Actor.cli()
        changing = opts["floor"] is not None or opts["ceiling"] is not None
        try:
            if opts["camera"]:
                camera = Camera.objects.filter(code=opts["camera"]).first()
                if camera is None:
                    raise CommandError(f"no camera '{opts['camera']}'")
                if changing:
                    current = CameraPolicy.objects.filter(camera=camera).first()
                    services.set_camera_policy(
                        actor,
                        camera,
                        floor_days=opts["floor"]
                        if opts["floor"] is not None
                        else (current.floor_days if current else None),
                        ceiling_days=opts["ceiling"]
                        if opts["ceiling"] is not None
                        else (current.ceiling_days if current else None),
                    )
                e = policy.effective(camera.pk)
                ceiling = f"{e.ceiling_days} ({e.ceiling_source})" if e.ceiling_days else "none"
                self.stdout.write(
                    f"{camera.code}: floor {e.floor_days} days ({e.floor_source}), "
                    f"ceiling {ceiling}"
                )
                return
            if changing:
                site = policy.site_policy()
                services.set_site_policy(
                    actor,
                    floor_days=opts["floor"] if opts["floor"] is not None else site.floor_days,
                    ceiling_days=opts["ceiling"]
                    if opts["ceiling"] is not None
                    else site.ceiling_days,
                )
        except ValidationFailed as exc:
            raise CommandError(str(exc)) from exc
        require(actor, Action.STORAGE_VIEW)
        e = policy.site_effective()
        self.stdout.write(
            f"site: floor {e.floor_days} days ({e.floor_source}; regulation "
            f"{policy.regulation_floor()}), ceiling {e.ceiling_days or 'none'}"
        )
        for p in CameraPolicy.objects.select_related("camera").order_by("camera__code"):
            eff = policy.effective(p.camera_id)
            self.stdout.write(
                f"  {p.camera.code}: floor {eff.floor_days}, ceiling {eff.ceiling_days or 'none'}"
            )

    def _holds(self, opts: dict[str, Any]) -> None:
        require(Actor.cli(), Action.STORAGE_VIEW)
        holds = services.active_holds()
        rows = [
            [
                f"#{h.pk}",
                ", ".join(sorted(c.code for c in h.cameras.all())),
                timezone.localtime(h.start).strftime("%Y-%m-%d %H:%M"),
                timezone.localtime(h.end).strftime("%Y-%m-%d %H:%M"),
                h.placed_by_name,
                h.source or "—",
                h.reason[:60],
            ]
            for h in holds
        ]
        for line in table(rows, ["HOLD", "CAMERAS", "FROM", "TO", "PLACED BY", "SOURCE", "REASON"]):
            self.stdout.write(line)
        self.stdout.write(f"{len(holds)} active hold(s)")
