"""Evidence packages: layout, signature, chain of custody, the .zip form and verification.

A package is a directory (BagIt-like, after RFC 8493)::

    <name>/
      bagit.txt               BagIt declaration
      README.txt              how to check the package, for people
      data/<clip>.mp4         the footage
      manifest-sha256.txt     "<sha256>  data/<clip>.mp4" per payload file (BagIt)
      manifest.json           request, grant, approvers, cameras, UTC ranges, the SHA-256
                              and size of every other file, the ingest hashes of the
                              source segments
      manifest.json.sig       Ed25519 signature of manifest.json (base64)
      site-key.pub            the site's Ed25519 public key (base64 of the raw 32 bytes)
      custody.jsonl           chain of custody, one JSON entry per line

The signature covers ``manifest.json`` byte for byte; the manifest covers every other file
by SHA-256 except the custody log, which grows after signing (each download adds a line).
The custody log protects itself: each entry carries the SHA-256 of the previous one (the
first that of ``manifest.json``), its own hash, and an Ed25519 signature of that hash, so
an edited, inserted or reordered entry fails; a removed last entry is found by comparing
with the site's copy (on site) — as with the audit log (docs/decisions/0003).

The ``.zip`` form holds the same files under ``<name>/``, stored (video does not
compress), in a fixed order with fixed header fields, so the verifier can rebuild every
header byte from the contents and a changed byte anywhere in the archive is reported.

This module has no Django imports: ``vigil verify`` runs it on a package alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "vigil-evidence-package/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PUBLIC_KEY = "site-key.pub"
CUSTODY = "custody.jsonl"
BAGIT = "bagit.txt"
PAYLOAD_MANIFEST = "manifest-sha256.txt"
README = "README.txt"
DATA = "data/"
# Files the manifest does not list: itself, its signature and the growing custody log.
UNLISTED = (MANIFEST, SIGNATURE, CUSTODY)

Signer = Callable[[bytes], bytes]
_CHUNK = 1 << 20


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(raw_public: bytes) -> str:
    """Same form as ``vigil.core.keys.fingerprint``: the first 16 bytes of the SHA-256 of
    the raw key, hex, in groups of four."""
    digest = hashlib.sha256(raw_public).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- writing


def write_package(
    root: Path,
    manifest: dict[str, Any],
    payload: dict[str, tuple[str, int]],
    *,
    sign: Signer,
    public_key: bytes,
    readme: str,
) -> bytes:
    """Write the tag files of a package whose payload (``data/...``) is already in
    ``root``; ``payload`` maps each payload file to its (SHA-256, size). Returns the
    signed manifest bytes."""
    bagit = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    payload_manifest = "".join(f"{h}  {name}\n" for name, (h, _n) in sorted(payload.items()))
    key_text = base64.b64encode(public_key) + b"\n"
    tags = {
        BAGIT: bagit,
        README: readme.encode("utf-8"),
        PAYLOAD_MANIFEST: payload_manifest.encode("utf-8"),
        PUBLIC_KEY: key_text,
    }
    for name, data in tags.items():
        _write(root / name, data)
    files = {name: {"sha256": h, "size": n} for name, (h, n) in payload.items()}
    files.update({name: {"sha256": sha256_hex(d), "size": len(d)} for name, d in tags.items()})
    body = dict(manifest)
    body["format"] = FORMAT
    body["files"] = dict(sorted(files.items()))
    body["site_key"] = {
        "public_key": base64.b64encode(public_key).decode(),
        "fingerprint": fingerprint(public_key),
    }
    manifest_bytes = (
        json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
    _write(root / MANIFEST, manifest_bytes)
    _write(root / SIGNATURE, base64.b64encode(sign(manifest_bytes)) + b"\n")
    _write(root / CUSTODY, b"")
    _fsync(root)
    return manifest_bytes


def custody_line(
    *,
    seq: int,
    prev: str,
    at: str,
    event: str,
    actor: str,
    detail: dict[str, Any],
    sign: Signer,
) -> tuple[str, str]:
    """One signed custody entry: (line without newline, its hash)."""
    body = {"seq": seq, "at": at, "event": event, "actor": actor, "detail": detail, "prev": prev}
    digest = sha256_hex(canonical(body))
    sig = base64.b64encode(sign(digest.encode("ascii"))).decode()
    return canonical({**body, "hash": digest, "sig": sig}).decode(), digest


def append_custody(root: Path, line: str) -> None:
    """Add a line to the custody log: new file, fsync, rename (never a torn line)."""
    path = root / CUSTODY
    current = path.read_bytes() if path.exists() else b""
    tmp = root / (CUSTODY + ".tmp")
    _write(tmp, current + line.encode("utf-8") + b"\n")
    os.replace(tmp, path)
    _fsync(root)


def package_files(root: Path) -> list[str]:
    """The package's files in their fixed order (the order of the .zip)."""
    names = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    names = [n for n in names if not n.endswith(".tmp")]

    def key(name: str) -> tuple[int, str]:
        fixed = [BAGIT, README, PUBLIC_KEY, PAYLOAD_MANIFEST, MANIFEST, SIGNATURE]
        if name in fixed:
            return (fixed.index(name), name)
        if name == CUSTODY:
            return (99, name)
        return (50, name)

    return sorted(names, key=key)


# --------------------------------------------------------------------------- zip form

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOC = struct.Struct("<IIQI")
_FLAGS = 0x0808  # sizes and CRC in a data descriptor after the data; UTF-8 names
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00, the zip epoch
_EXTERNAL = 0o100644 << 16
_MADE_BY = (3 << 8) | 45  # Unix, version 4.5
_MAX32 = 0xFFFFFFFF


@dataclass(frozen=True)
class ZipEntry:
    name: str  # full name inside the archive
    size: int
    crc: int
    offset: int  # of the local header


def _local_header(name: bytes, size: int) -> bytes:
    big = size >= _MAX32
    extra = struct.pack("<HHQQ", 1, 16, 0, 0) if big else b""
    return (
        _LOCAL.pack(
            0x04034B50,
            45 if big else 20,
            _FLAGS,
            0,
            _DOS_TIME,
            _DOS_DATE,
            0,
            _MAX32 if big else 0,
            _MAX32 if big else 0,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def _descriptor(size: int, crc: int) -> bytes:
    if size >= _MAX32:
        return struct.pack("<IIQQ", 0x08074B50, crc, size, size)
    return struct.pack("<IIII", 0x08074B50, crc, size, size)


def _central_header(entry: ZipEntry) -> bytes:
    name = entry.name.encode("utf-8")
    big = entry.size >= _MAX32 or entry.offset >= _MAX32
    extra = struct.pack("<HHQQQ", 1, 24, entry.size, entry.size, entry.offset) if big else b""
    size32 = _MAX32 if big else entry.size
    return (
        _CENTRAL.pack(
            0x02014B50,
            _MADE_BY,
            45 if entry.size >= _MAX32 else 20,
            _FLAGS,
            0,
            _DOS_TIME,
            _DOS_DATE,
            entry.crc,
            size32,
            size32,
            len(name),
            len(extra),
            0,
            0,
            0,
            _EXTERNAL,
            _MAX32 if big else entry.offset,
        )
        + name
        + extra
    )


def _end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    big = count >= 0xFFFF or cd_offset >= _MAX32 or cd_size >= _MAX32
    out = b""
    if big:
        z64_offset = cd_offset + cd_size
        out += _ZIP64_EOCD.pack(
            0x06064B50, 44, _MADE_BY, 45, 0, 0, count, count, cd_size, cd_offset
        )
        out += _ZIP64_LOC.pack(0x07064B50, 0, z64_offset, 1)
    n16 = 0xFFFF if big else count
    out += _EOCD.pack(
        0x06054B50, 0, 0, n16, n16, _MAX32 if big else cd_size, _MAX32 if big else cd_offset, 0
    )
    return out


def zip_stream(root: Path, prefix: str, names: Sequence[str]) -> Iterator[bytes]:
    """The package as a .zip, produced as it is read (nothing written to disk)."""
    entries: list[ZipEntry] = []
    offset = 0
    for rel in names:
        name = f"{prefix}/{rel}"
        path = root / rel
        size = path.stat().st_size
        header = _local_header(name.encode("utf-8"), size)
        yield header
        crc = 0
        done = 0
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
                done += len(chunk)
                yield chunk
        if done != size:
            raise OSError(f"{path} changed while it was being sent")
        yield _descriptor(size, crc)
        entries.append(ZipEntry(name, size, crc, offset))
        offset += len(header) + size + len(_descriptor(size, crc))
    central = b"".join(_central_header(e) for e in entries)
    yield central
    yield _end_records(len(entries), offset, len(central))


def zip_size(root: Path, prefix: str, names: Sequence[str]) -> int:
    """The exact length :func:`zip_stream` will produce (for Content-Length)."""
    total = 0
    central = 0
    count = 0
    for rel in names:
        name = f"{prefix}/{rel}".encode()
        size = (root / rel).stat().st_size
        central += len(_central_header(ZipEntry(name.decode(), size, 0, total)))
        total += len(_local_header(name, size)) + size + len(_descriptor(size, 0))
        count += 1
    return total + central + len(_end_records(count, total, central))


# --------------------------------------------------------------------------- reading


class _Damaged(Exception):
    pass


Range = tuple[int, int]  # (offset, length) inside a file


class _Hasher:
    """SHA-256 of a file's bytes and, in the same pass, of some ranges of it."""

    def __init__(self, ranges: Sequence[Range] = ()) -> None:
        self.whole = hashlib.sha256()
        self.crc = 0
        self.pos = 0
        self.ranges = sorted(ranges)
        self.parts = {r: hashlib.sha256() for r in self.ranges}

    def update(self, chunk: bytes) -> None:
        self.whole.update(chunk)
        self.crc = zlib.crc32(chunk, self.crc)
        end = self.pos + len(chunk)
        for r in self.ranges:
            lo, hi = max(r[0], self.pos), min(r[0] + r[1], end)
            if lo < hi:
                self.parts[r].update(chunk[lo - self.pos : hi - self.pos])
        self.pos = end

    def result(self) -> tuple[str, int, dict[Range, str]]:
        return self.whole.hexdigest(), self.pos, {r: h.hexdigest() for r, h in self.parts.items()}


class _Reader:
    """A package's files, from a directory or a .zip."""

    kind = ""

    def names(self) -> list[str]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def digest(self, name: str, ranges: Sequence[Range] = ()) -> tuple[str, int, dict[Range, str]]:
        """SHA-256 and size of a file, and the SHA-256 of each of ``ranges`` of it."""
        raise NotImplementedError


class _DirReader(_Reader):
    kind = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return package_files(self.root)

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def digest(self, name: str, ranges: Sequence[Range] = ()) -> tuple[str, int, dict[Range, str]]:
        h = _Hasher(ranges)
        with open(self.root / name, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.result()


class _ZipReader(_Reader):
    """Reads the fixed-layout .zip; :meth:`check_layout` reports any byte that differs
    from what the writer would have produced for these contents."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by verify()
        self.size = os.fstat(self.f.fileno()).st_size
        self.entries = self._central_directory()
        self.prefix = self._prefix()
        self._digests: dict[str, tuple[str, int, dict[Range, str]]] = {}
        self._crcs: dict[str, int] = {}

    def close(self) -> None:
        self.f.close()

    def _at(self, offset: int, n: int) -> bytes:
        self.f.seek(offset)
        data = self.f.read(n)
        if len(data) != n:
            raise _Damaged(f"the archive ends early (at byte {offset + len(data)})")
        return data

    def _central_directory(self) -> list[ZipEntry]:
        try:
            return self._read_directory()
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise _Damaged(f"the zip directory is damaged ({exc})") from exc

    def _read_directory(self) -> list[ZipEntry]:
        if self.size < _EOCD.size:
            raise _Damaged("too short to be a zip archive")
        eocd = _EOCD.unpack(self._at(self.size - _EOCD.size, _EOCD.size))
        if eocd[0] != 0x06054B50:
            raise _Damaged("the zip end record is missing or damaged (last 22 bytes)")
        count, cd_size, cd_offset = eocd[4], eocd[5], eocd[6]
        if count == 65535 or _MAX32 in (cd_size, cd_offset):
            loc = _ZIP64_LOC.unpack(
                self._at(self.size - _EOCD.size - _ZIP64_LOC.size, _ZIP64_LOC.size)
            )
            if loc[0] != 0x07064B50:
                raise _Damaged("the zip64 locator is damaged")
            z = _ZIP64_EOCD.unpack(self._at(loc[2], _ZIP64_EOCD.size))
            if z[0] != 0x06064B50:
                raise _Damaged("the zip64 end record is damaged")
            count, cd_size, cd_offset = z[6], z[8], z[9]
        if cd_offset + cd_size > self.size:
            raise _Damaged("the zip directory points past the end of the archive")
        cd = self._at(cd_offset, cd_size)
        entries: list[ZipEntry] = []
        pos = 0
        for _ in range(count):
            if pos + _CENTRAL.size > len(cd):
                raise _Damaged("the zip directory is truncated")
            fields = _CENTRAL.unpack_from(cd, pos)
            if fields[0] != 0x02014B50:
                raise _Damaged(f"the zip directory is damaged (byte {cd_offset + pos})")
            name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
            start = pos + _CENTRAL.size
            try:
                name = cd[start : start + name_len].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Damaged(f"a file name in the zip directory is damaged: {exc}") from exc
            extra = cd[start + name_len : start + name_len + extra_len]
            size, offset = fields[9], fields[16]
            if extra_len >= 28 and struct.unpack_from("<HH", extra)[0] == 1:
                size, _csize, offset = struct.unpack_from("<QQQ", extra, 4)
            entries.append(ZipEntry(name, size, fields[7], offset))
            pos = start + name_len + extra_len + comment_len
        return entries

    def _prefix(self) -> str:
        tops = {e.name.split("/", 1)[0] for e in self.entries}
        if len(tops) != 1 or any("/" not in e.name for e in self.entries):
            raise _Damaged("the archive does not hold one package folder")
        return tops.pop()

    def names(self) -> list[str]:
        return [e.name.split("/", 1)[1] for e in self.entries]

    def _entry(self, name: str) -> ZipEntry:
        full = f"{self.prefix}/{name}"
        for e in self.entries:
            if e.name == full:
                return e
        raise KeyError(name)

    def _data_offset(self, e: ZipEntry) -> int:
        head = self._at(e.offset, _LOCAL.size)
        fields = _LOCAL.unpack(head)
        if fields[0] != 0x04034B50:
            raise _Damaged(f"the local header of {e.name} is damaged (byte {e.offset})")
        return int(e.offset + _LOCAL.size + fields[9] + fields[10])

    def read(self, name: str) -> bytes:
        e = self._entry(name)
        return self._at(self._data_offset(e), e.size)

    def digest(self, name: str, ranges: Sequence[Range] = ()) -> tuple[str, int, dict[Range, str]]:
        cached = self._digests.get(name)
        if cached is None or any(r not in cached[2] for r in ranges):
            e = self._entry(name)
            self.f.seek(self._data_offset(e))
            h = _Hasher(ranges)
            left = e.size
            while left:
                chunk = self.f.read(min(_CHUNK, left))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            cached = h.result()
            self._digests[name] = cached
            self._crcs[name] = h.crc
        return cached

    def check_layout(self) -> list[str]:
        """Every header byte compared with what the writer produces for these contents."""
        problems: list[str] = []
        offset = 0
        rebuilt: list[ZipEntry] = []
        for e in self.entries:
            rel = e.name.split("/", 1)[1]
            self.digest(rel)
            crc = self._crcs[rel]
            if e.offset != offset:
                problems.append(f"{e.name}: starts at byte {e.offset}, expected {offset}")
                return problems
            header = _local_header(e.name.encode("utf-8"), e.size)
            if self._at(offset, len(header)) != header:
                problems.append(f"{e.name}: its local zip header was altered (byte {offset})")
            end = offset + len(header) + e.size
            desc = _descriptor(e.size, crc)
            if self._at(end, len(desc)) != desc:
                problems.append(
                    f"{e.name}: its CRC or size record differs from the contents (byte {end})"
                )
            if crc != e.crc:
                problems.append(f"{e.name}: CRC-32 in the zip directory differs from the contents")
            rebuilt.append(ZipEntry(e.name, e.size, crc, offset))
            offset = end + len(desc)
        central = b"".join(_central_header(e) for e in rebuilt)
        tail = central + _end_records(len(rebuilt), offset, len(central))
        if offset + len(tail) != self.size:
            problems.append(
                f"the archive is {self.size} bytes, expected {offset + len(tail)} "
                "(bytes added or removed)"
            )
        else:
            actual = self._at(offset, len(tail))
            if actual != tail:
                at = next(i for i in range(len(tail)) if actual[i] != tail[i])
                problems.append(f"the zip directory was altered (byte {offset + at})")
        return problems


# --------------------------------------------------------------------------- verifying


@dataclass
class Problem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message


@dataclass
class Report:
    """What verification found. ``ok`` means nothing was altered."""

    path: str
    kind: str = ""
    name: str = ""
    problems: list[Problem] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    custody: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""
    site_key_matches: bool | None = None  # None: not checked (not on site)
    files_checked: int = 0
    bytes_checked: int = 0
    sources_checked: int = 0  # recorder segments found whole in a clip, checked by hash

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: str, message: str) -> None:
        self.problems.append(Problem(file, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "package": self.name,
            "valid": self.ok,
            "problems": [{"file": p.file, "message": p.message} for p in self.problems],
            "fingerprint": self.fingerprint,
            "site_key_matches": self.site_key_matches,
            "files_checked": self.files_checked,
            "bytes_checked": self.bytes_checked,
            "sources_checked": self.sources_checked,
            "custody": self.custody,
        }


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def manifest_changes(original: bytes, altered: bytes) -> list[str]:
    """The fields that differ between two manifests (for the site's verify page)."""
    try:
        a = _flatten(json.loads(original))
        b = _flatten(json.loads(altered))
    except ValueError:
        return ["the manifest is no longer valid JSON"]
    changes = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "∅") != b.get(key, "∅"):
            changes.append(f"{key}: {a.get(key, '∅')!r} → {b.get(key, '∅')!r}")
    if not changes and original != altered:
        changes.append("only its formatting (whitespace or key order)")
    return changes


def _load_key(data: bytes, report: Report) -> Ed25519PublicKey | None:
    try:
        raw = base64.b64decode(data.strip(), validate=True)
        if len(raw) != 32:
            raise ValueError("not 32 bytes")
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        report.add(PUBLIC_KEY, f"not a valid Ed25519 public key ({exc})")
        return None
    report.fingerprint = fingerprint(raw)
    return key


def _check_custody(
    text: bytes,
    manifest_bytes: bytes,
    key: Ed25519PublicKey | None,
    report: Report,
    site: SiteRecord,
) -> None:
    prev = sha256_hex(manifest_bytes)
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        report.add(CUSTODY, "not UTF-8 text: the log was altered")
        return
    if lines and lines[-1] == "":
        lines.pop()
    else:
        report.add(CUSTODY, "the last line is incomplete: the log was altered")
    for i, line in enumerate(lines, start=1):
        where = f"{CUSTODY} line {i}"
        try:
            entry = json.loads(line)
            body = {k: entry[k] for k in ("seq", "at", "event", "actor", "detail", "prev")}
            digest, sig = str(entry["hash"]), str(entry["sig"])
        except (ValueError, KeyError, TypeError):
            report.add(where, "not a readable entry: the line was altered")
            prev = ""
            continue
        report.custody.append(body | {"hash": digest})
        if canonical({**body, "hash": digest, "sig": sig}).decode() != line:
            report.add(where, "not in the form it was written in: the line was altered")
        if sha256_hex(canonical(body)) != digest:
            report.add(where, f"the entry was altered ({body['event']} by {body['actor']})")
        if body["seq"] != i:
            report.add(where, f"entry numbered {body['seq']}: entries were removed or reordered")
        if body["prev"] != prev:
            report.add(
                where,
                "does not follow the previous entry (or the manifest): entries were removed, "
                "inserted or reordered",
            )
        if key is not None:
            try:
                key.verify(base64.b64decode(sig, validate=True), digest.encode("ascii"))
            except (InvalidSignature, ValueError, binascii.Error):
                report.add(where, "its signature does not match the site key")
        prev = digest
    site_lines = site.custody
    if site_lines is not None:
        for i, line in enumerate(lines, start=1):
            if i > len(site_lines):
                report.add(f"{CUSTODY} line {i}", "the site has no record of this entry")
            elif site_lines[i - 1] != line:
                report.add(f"{CUSTODY} line {i}", "differs from the site's record")
        if site.exact_custody and len(site_lines) > len(lines):
            report.add(
                CUSTODY,
                f"{len(site_lines) - len(lines)} entr(y/ies) recorded on site are missing: "
                "the log was cut",
            )


def package_name(path: Path) -> str:
    """The package's name (its folder), without checking anything; "" if unreadable."""
    if path.is_dir():
        return path.name
    try:
        reader = _ZipReader(path)
    except (_Damaged, OSError):
        return ""
    reader.close()
    return reader.prefix


@dataclass(frozen=True)
class SiteRecord:
    """What the site knows, to compare a package with when verifying on site."""

    fingerprint: str | None = None  # the site key's
    manifest: bytes | None = None  # the manifest as signed
    custody: Sequence[str] | None = None  # custody lines as recorded
    exact_custody: bool = False  # the package is the site's own copy: no line may be missing


def verify(path: Path, site: SiteRecord | None = None) -> Report:
    """Check a package (directory or .zip). With ``site`` (on site), also compare the key
    with the site's, and the manifest and the custody log with the site's copies."""
    site = site or SiteRecord()
    report = Report(path=str(path))
    reader: _Reader
    try:
        if path.is_dir():
            reader = _DirReader(path)
            report.name = path.name
        else:
            reader = _ZipReader(path)
            report.name = reader.prefix
    except _Damaged as exc:
        report.kind = "zip"
        report.add(path.name, str(exc))
        return report
    except OSError as exc:
        report.add(path.name, f"cannot be read: {exc.strerror or exc}")
        return report
    report.kind = reader.kind
    try:
        _verify(reader, report, site)
        if isinstance(reader, _ZipReader):
            for message in reader.check_layout():
                report.add(path.name, message)
    except _Damaged as exc:
        report.add(path.name, str(exc))
    finally:
        if isinstance(reader, _ZipReader):
            reader.close()
    return report


def _verify(reader: _Reader, report: Report, site: SiteRecord) -> None:
    names = reader.names()
    if len(set(names)) != len(names):
        report.add("", "a file appears twice in the package")
    present = set(names)
    for required in (MANIFEST, SIGNATURE, PUBLIC_KEY, CUSTODY):
        if required not in present:
            report.add(required, "missing")
    if MANIFEST not in present:
        return
    manifest_bytes = reader.read(MANIFEST)
    key = _load_key(reader.read(PUBLIC_KEY), report) if PUBLIC_KEY in present else None
    if site.fingerprint is not None and report.fingerprint:
        report.site_key_matches = report.fingerprint == site.fingerprint
        if not report.site_key_matches:
            report.add(
                PUBLIC_KEY,
                f"signed with key {report.fingerprint}, not this site's key {site.fingerprint}",
            )
    if key is not None and SIGNATURE in present:
        sig_text = reader.read(SIGNATURE)
        try:
            signature = base64.b64decode(sig_text.strip(), validate=True)
            if len(signature) != 64 or base64.b64encode(signature) + b"\n" != sig_text:
                raise ValueError("not in the form it was written in")
        except (ValueError, binascii.Error):
            report.add(SIGNATURE, "the signature file was altered (not a signature any more)")
        else:
            try:
                key.verify(signature, manifest_bytes)
            except InvalidSignature:
                if site.manifest is not None and site.manifest == manifest_bytes:
                    where, what = SIGNATURE, "the signature was altered (the manifest is intact)"
                elif site.manifest is not None:
                    where, what = MANIFEST, "altered: the signature no longer matches it"
                else:  # without the site's copy, either may have changed
                    where = f"{MANIFEST} + {SIGNATURE}"
                    what = "the signature does not match: the manifest or its signature was altered"
                report.add(where, what)
    if site.manifest is not None and site.manifest != manifest_bytes:
        for change in manifest_changes(site.manifest, manifest_bytes)[:20]:
            report.add(MANIFEST, f"differs from the site's record: {change}")
    try:
        manifest = json.loads(manifest_bytes)
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except ValueError:
        report.add(MANIFEST, "not valid JSON: the manifest was altered")
        return
    report.manifest = manifest
    if manifest.get("format") != FORMAT:
        report.add(MANIFEST, f"unknown format {manifest.get('format')!r}")
    embedded = (manifest.get("site_key") or {}).get("public_key")
    if (
        PUBLIC_KEY in present
        and embedded is not None
        and str(embedded).encode() + b"\n" != reader.read(PUBLIC_KEY)
    ):
        report.add(PUBLIC_KEY, "differs from the key named in the signed manifest")
    listed: dict[str, Any] = manifest.get("files") or {}
    embedded = _embedded_sources(manifest)
    for name in sorted(listed):
        want = listed[name]
        if name not in present:
            report.add(name, "missing")
            continue
        sources = embedded.get(name, [])
        digest, size, parts = reader.digest(name, [(o, n) for _s, o, n in sources])
        report.files_checked += 1
        report.bytes_checked += size
        if size != want.get("size"):
            report.add(name, f"size {size} bytes, the manifest says {want.get('size')}")
        if digest != want.get("sha256"):
            report.add(
                name,
                f"content altered: SHA-256 {digest[:16]}… differs from the manifest's "
                f"{str(want.get('sha256'))[:16]}…",
            )
        for source, offset, length in sources:
            report.sources_checked += 1
            if parts.get((offset, length)) != source.get("ingest_sha256"):
                report.add(
                    name,
                    f"bytes {offset}–{offset + length} should be the recorder's segment "
                    f"{source.get('segment')} (ingest SHA-256 "
                    f"{str(source.get('ingest_sha256'))[:16]}…) but are not",
                )
    for name in sorted(present - set(listed) - set(UNLISTED)):
        report.add(name, "not part of the signed package (added)")
    if CUSTODY in present:
        _check_custody(reader.read(CUSTODY), manifest_bytes, key, report, site)


def _embedded_sources(manifest: dict[str, Any]) -> dict[str, list[tuple[dict[str, Any], int, int]]]:
    """file -> the recorder segments copied whole into it: (source entry, offset, size)."""
    out: dict[str, list[tuple[dict[str, Any], int, int]]] = {}
    for clip in manifest.get("clips") or []:
        if not isinstance(clip, dict):
            continue
        for source in clip.get("sources") or []:
            where = source.get("embedded") if isinstance(source, dict) else None
            if isinstance(where, dict):
                try:
                    entry = (source, int(where["offset"]), int(where["size"]))
                except (KeyError, TypeError, ValueError):
                    continue
                out.setdefault(str(clip.get("file")), []).append(entry)
    return out


def render_text(report: Report) -> str:
    """The report for people (``vigil verify``)."""
    lines = [
        f"{report.path} ({report.kind or 'unreadable'}{', ' + report.name if report.name else ''})"
    ]
    if report.fingerprint:
        note = ""
        if report.site_key_matches is True:
            note = " (this site's key)"
        lines.append(f"signed by key {report.fingerprint}{note}")
    lines.append(
        f"{report.files_checked} file(s), {report.bytes_checked} bytes checked; "
        f"{report.sources_checked} recorder segment(s) found intact in the clips; "
        f"custody log: {len(report.custody)} entr(y/ies)"
    )
    for entry in report.custody:
        lines.append(
            f"  #{entry.get('seq')} {entry.get('at')} {entry.get('event')} by {entry.get('actor')}"
        )
    if report.ok:
        lines.append("valid")
    else:
        lines.append(f"NOT VALID: {len(report.problems)} problem(s)")
        lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines)


__all__ = [
    "FORMAT",
    "Problem",
    "Report",
    "SiteRecord",
    "append_custody",
    "canonical",
    "custody_line",
    "fingerprint",
    "manifest_changes",
    "package_files",
    "package_name",
    "render_text",
    "verify",
    "write_package",
    "zip_size",
    "zip_stream",
]
