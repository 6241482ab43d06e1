from __future__ import annotations

from vigil.vision.decode import decode_packets, iter_packets
from vigil.vision.pipeline import AnalyserConfig, CameraAnalyser
from vigil.vision.quality import CameraSpec


def test_camera_analyser_on_a_live_like_substream(substream: str) -> None:
    """Packets of a 640x360 sub-stream -> PacketDecoder -> CameraAnalyser."""
    cfg = AnalyserConfig(spec=CameraSpec(640, 360, 400), quality_interval=10.0)
    analyser = CameraAnalyser(cfg)
    starts, ends, tamper, quality = [], [], [], []
    last = 0.0
    for frame in decode_packets(iter_packets(substream), "h264", fps=5.0):
        out = analyser.process(frame.luma, frame.ts, bitrate_kbps=400)
        starts += [u.event for u in out.motion_events if u.kind == "start"]
        ends += [u.event for u in out.motion_events if u.kind == "end"]
        tamper += out.tamper_events
        if out.quality:
            quality.append(out.quality)
        last = frame.ts
    flushed, _ = analyser.close(last)
    ends += [u.event for u in flushed]
    assert tamper == []
    assert len(quality) == 3
    assert all(q.passed for q in quality)
    # people enter at 6.0 s and 22.7 s (labels/motion.json)
    assert any(5.0 <= e.start <= 7.0 for e in starts)
    assert any(21.7 <= e.start <= 23.7 for e in starts)
    assert all(e.thumbnail for e in ends)
    assert analyser.check_signal(last + 5.0) == []
    assert [e.alert.cause for e in analyser.check_signal(last + 11.0)] == ["video_lost"]

    state = analyser.save_state()
    again = CameraAnalyser(cfg, state=state)
    assert not again.tamper.learning
    assert again.save_state() == state
