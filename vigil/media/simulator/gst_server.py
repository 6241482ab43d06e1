"""Simulated IP cameras on GStreamer's gst-rtsp-server.

Runs under the SYSTEM Python (``/usr/bin/python3``), which has PyGObject and the
GstRtspServer typelib; the project virtualenv does not. Start it as::

    /usr/bin/python3 gst_server.py CONFIG.json

The JSON configuration::

    {
      "bind": "127.0.0.1", "port": 0,
      "auth": {"user": "u", "password": "p", "methods": ["basic", "digest"]} | null,
      "mounts": [{"path": "/cam/C01/main", "codec": "h264", "video": "...h264",
                  "fps": 10.0, "audio": "...aac" | null}],
      "clock_mount": "/clock" | null
    }

Each mount loops its Annex-B elementary stream (and ADTS audio) forever at real-time
pace: an ``appsrc`` is fed access unit by access unit with explicit, continuous
timestamps (frame n of loop k gets ``(k * frames + n) / fps``), so RTP timestamps and
sequence numbers continue across the loop point; the RTSP server's sinks pace the
non-live pipeline against the clock. Media are shared: several clients of one mount
share one pipeline.
The clock mount encodes a live 640x360 picture with the wall clock (UTC, milliseconds)
burnt in, for end-to-end latency measurements: as text, and as a machine-readable time
code of white/black squares (``timecode.py``) that a test reads back from the
decoded picture. When listening, the server prints
``READY <port>`` on stdout.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from fractions import Fraction
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

try:  # run as a script: the time code module sits next to this file
    from timecode import svg as timecode_svg
except ImportError:  # imported as part of the package
    from vigil.media.simulator.timecode import svg as timecode_svg


def _fps_fraction(fps: float) -> str:
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def split_nals(data: bytes) -> list[bytes]:
    """Split an Annex-B byte stream into NAL units without start codes."""
    nals: list[bytes] = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            nals.append(data[start:end])
        pos = nxt
    return nals


def access_units(data: bytes, codec: str) -> list[bytes]:
    """Group an Annex-B stream into access units, each re-emitted in Annex-B form.

    A new access unit starts at the first VCL NAL unit of a picture (first_mb_in_slice
    == 0 for H.264, first_slice_segment_in_pic_flag for H.265); non-VCL NAL units
    (parameter sets, SEI, AUD) seen before it belong to the next picture.
    """
    aus: list[bytes] = []
    current: list[bytes] = []
    pending: list[bytes] = []
    for nal in split_nals(data):
        if codec == "h265":
            ntype = (nal[0] >> 1) & 0x3F
            vcl = ntype < 32
            first = vcl and len(nal) > 2 and bool(nal[2] & 0x80)
        else:
            ntype = nal[0] & 0x1F
            vcl = 1 <= ntype <= 5
            first = vcl and len(nal) > 1 and bool(nal[1] & 0x80)
        if not vcl:
            pending.append(nal)
            continue
        if first and current:
            aus.append(b"".join(b"\x00\x00\x00\x01" + n for n in current))
            current = []
        current.extend(pending)
        pending = []
        current.append(nal)
    if current:
        aus.append(b"".join(b"\x00\x00\x00\x01" + n for n in current))
    return aus


def adts_frames(data: bytes) -> tuple[list[bytes], int]:
    """Split an ADTS stream into frames; return them and the sample rate."""
    rates = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
    frames: list[bytes] = []
    rate = 48000
    i = 0
    while i + 7 <= len(data):
        if data[i] != 0xFF or data[i + 1] & 0xF0 != 0xF0:
            i += 1
            continue
        rate = rates[(data[i + 2] >> 2) & 0x0F]
        length = ((data[i + 3] & 0x03) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        if length < 7:
            break
        frames.append(data[i : i + length])
        i += length
    return frames, rate


_LOADED: dict[tuple[str, str], Any] = {}


def _load(path: str, kind: str) -> Any:
    key = (path, kind)
    if key not in _LOADED:
        with open(path, "rb") as f:
            data = f.read()
        _LOADED[key] = adts_frames(data) if kind == "aac" else access_units(data, kind)
    return _LOADED[key]


class LoopFeeder:
    """Feeds one mount's appsrc elements with continuously timestamped looping media."""

    def __init__(self, mount: dict[str, Any], media: Any) -> None:
        self.codec = mount.get("codec", "h264")
        self.frames: list[bytes] = _load(mount["video"], self.codec)
        self.frame_ns = round(1e9 / float(mount.get("fps", 10.0)))
        self.loop_ns = self.frame_ns * len(self.frames)
        self.vindex = 0
        element = media.get_element()
        self.vsrc = element.get_by_name("vsrc")
        self.vsrc.connect("need-data", self._need_video)
        self.asrc = element.get_by_name("asrc")
        if self.asrc is not None and mount.get("audio"):
            self.aframes, rate = _load(mount["audio"], "aac")
            self.aframe_ns = round(1024 * 1e9 / rate)
            # Audio frames that fit in one video loop, so audio and video stay aligned.
            self.aper_loop = max(1, min(len(self.aframes), self.loop_ns // self.aframe_ns))
            self.aindex = 0
            self.asrc.connect("need-data", self._need_audio)

    def _push(self, src: Any, payload: bytes, pts: int, duration: int) -> None:
        buf = Gst.Buffer.new_wrapped(payload)
        buf.pts = pts
        buf.dts = pts
        buf.duration = duration
        src.emit("push-buffer", buf)

    def _need_video(self, src: Any, _length: int) -> None:
        n = len(self.frames)
        loop, pos = divmod(self.vindex, n)
        self._push(src, self.frames[pos], loop * self.loop_ns + pos * self.frame_ns, self.frame_ns)
        self.vindex += 1

    def _need_audio(self, src: Any, _length: int) -> None:
        loop, pos = divmod(self.aindex, self.aper_loop)
        pts = loop * self.loop_ns + pos * self.aframe_ns
        self._push(src, self.aframes[pos], pts, self.aframe_ns)
        self.aindex += 1


def video_launch(mount: dict[str, Any]) -> str:
    """The gst-launch description for one looping camera mount."""
    codec = mount.get("codec", "h264")
    fps = _fps_fraction(float(mount.get("fps", 10.0)))
    enc = "h265" if codec == "h265" else "h264"
    common = "is-live=false format=time block=false max-bytes=400000"
    parts = [
        f"appsrc name=vsrc {common} "
        f'caps="video/x-{enc},stream-format=byte-stream,alignment=au,framerate={fps}" '
        f"! {enc}parse ! rtp{enc}pay name=pay0 pt=96 config-interval=-1"
    ]
    if mount.get("audio"):
        parts.append(
            f"appsrc name=asrc {common} "
            'caps="audio/mpeg,mpegversion=4,stream-format=adts,framed=true" '
            "! aacparse ! rtpmp4gpay name=pay1 pt=97"
        )
    return "( " + " ".join(parts) + " )"


CLOCK_LAUNCH = (
    "( videotestsrc is-live=true pattern=black "
    "! video/x-raw,format=BGRA,width=640,height=360,framerate=15/1 "
    "! rsvgoverlay name=timecode "
    '! textoverlay name=wallclock font-desc="Sans 28" valignment=center halignment=center '
    "! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
    "bitrate=400 ! video/x-h264,profile=constrained-baseline "
    "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)
# Without librsvg's element the clock mount keeps only the readable text.
CLOCK_LAUNCH_TEXT_ONLY = CLOCK_LAUNCH.replace("! rsvgoverlay name=timecode ", "").replace(
    "format=BGRA,", ""
)


def _on_clock_media(_factory: Any, media: Any) -> None:
    """Burn the wall clock into every frame just before the overlays draw it: as text for
    people, and as a time code for programs (when the rsvgoverlay element exists)."""
    element = media.get_element()
    overlay = element.get_by_name("wallclock")
    timecode = element.get_by_name("timecode")
    target = timecode if timecode is not None else overlay
    pad = target.get_static_pad("sink" if timecode is not None else "video_sink")

    def probe(_pad: Any, _info: Any) -> Any:
        now = time.time()
        ms = int(now * 1000)
        stamp = time.strftime("%H:%M:%S", time.gmtime(now))
        overlay.set_property("text", f"{stamp}.{ms % 1000:03d} UTC\n{ms}")
        if timecode is not None:
            timecode.set_property("data", timecode_svg(ms))
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.BUFFER, probe)


def _forget(feeders: list[LoopFeeder], media: Any) -> None:
    element = media.get_element()
    feeders[:] = [f for f in feeders if f.vsrc.get_parent() is not element]


def build_server(config: dict[str, Any]) -> Any:
    """Create the RTSP server with all mounts (not yet attached)."""
    server = GstRtspServer.RTSPServer()
    server.set_address(config.get("bind", "127.0.0.1"))
    server.set_service(str(config.get("port", 0)))
    mounts = server.get_mount_points()
    auth_cfg = config.get("auth")
    role = "camera-user"
    if auth_cfg:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", role)
        methods = set(auth_cfg.get("methods", ["basic"]))
        flags = 0
        if "basic" in methods:
            auth.add_basic(
                GstRtspServer.RTSPAuth.make_basic(auth_cfg["user"], auth_cfg["password"]), token
            )
            flags |= int(GstRtsp.RTSPAuthMethod.BASIC)
        if "digest" in methods:
            auth.add_digest(auth_cfg["user"], auth_cfg["password"], token)
            flags |= int(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod(flags))
        server.set_auth(auth)

    def make_factory(launch: str) -> Any:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        factory.set_latency(0)
        if auth_cfg:
            factory.add_role_from_structure(
                Gst.Structure.new_from_string(
                    f"{role}, media.factory.access=(boolean)true, "
                    "media.factory.construct=(boolean)true"
                )
            )
        return factory

    feeders: list[LoopFeeder] = []
    for mount in config.get("mounts", []):
        factory = make_factory(video_launch(mount))

        def configure(_factory: Any, media: Any, mount: dict[str, Any] = mount) -> None:
            feeders.append(LoopFeeder(mount, media))
            media.connect("unprepared", lambda m: _forget(feeders, m))

        factory.connect("media-configure", configure)
        mounts.add_factory(mount["path"], factory)
    clock_path = config.get("clock_mount")
    if clock_path:
        launch = CLOCK_LAUNCH
        if Gst.ElementFactory.find("rsvgoverlay") is None:
            launch = CLOCK_LAUNCH_TEXT_ONLY
        factory = make_factory(launch)
        factory.connect("media-configure", _on_clock_media)
        mounts.add_factory(clock_path, factory)
    return server


def main(argv: list[str]) -> int:
    """Entry point: ``gst_server.py CONFIG.json`` or ``gst_server.py -`` (stdin)."""
    if len(argv) != 2:
        print("usage: gst_server.py CONFIG.json|-", file=sys.stderr)
        return 2
    if argv[1] == "-":
        text = sys.stdin.read()
    else:
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
    config = json.loads(text)
    Gst.init(None)
    server = build_server(config)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print("ERROR cannot listen", flush=True)
        return 1

    # Drop idle sessions regularly so killed clients do not pile up.
    def cleanup() -> bool:
        server.get_session_pool().cleanup()
        return True

    GLib.timeout_add_seconds(2, cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
