"""Camera-to-screen latency, read in the browser from the simulator clock's time code.

``READ_LATENCY`` runs in the page: for every frame the video element presents
(``requestVideoFrameCallback``) it draws the picture into a canvas, reads the 56 squares
of the time code (layout in :mod:`vigil.media.simulator.timecode`) and records
``expected display time - burnt-in time`` in milliseconds. Both clocks are this
machine's wall clock.
"""

from __future__ import annotations

import statistics
from typing import Any

from vigil.media.simulator import timecode

READ_LATENCY = """
async ([selector, seconds, layout]) => {
  const [BITS, PER_ROW, BLOCK, X0, Y0] = layout;
  const video = document.querySelector(selector);
  if (!video) return {error: "no video " + selector};
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 360;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const decode = () => {
    ctx.drawImage(video, 0, 0, 640, 360);
    const px = ctx.getImageData(0, 0, 640, 360).data;
    let word = 0n;
    for (let i = 0; i < BITS; i++) {
      const cx = X0 + (i % PER_ROW) * BLOCK + (BLOCK >> 1);
      const cy = Y0 + Math.floor(i / PER_ROW) * BLOCK + (BLOCK >> 1);
      let total = 0;
      for (const dy of [-4, 0, 4]) for (const dx of [-4, 0, 4]) {
        const o = ((cy + dy) * 640 + cx + dx) * 4;
        total += (px[o] + px[o + 1] + px[o + 2]) / 3;
      }
      word = (word << 1n) | (total / 9 > 128 ? 1n : 0n);
    }
    const value = word >> 8n;
    let sum = 0;
    for (let b = 0n; b < 6n; b++) sum += Number((value >> (8n * b)) & 255n);
    return ((sum & 255) ^ 0x5a) === Number(word & 255n) ? Number(value) : null;
  };
  return await new Promise((resolve) => {
    const samples = [];
    let bad = 0;
    const end = performance.now() + seconds * 1000;
    const onFrame = (now, meta) => {
      const ms = decode();
      if (ms === null) bad++;
      else samples.push(performance.timeOrigin + meta.expectedDisplayTime - ms);
      if (performance.now() < end) video.requestVideoFrameCallback(onFrame);
      else resolve({samples, bad});
    };
    video.requestVideoFrameCallback(onFrame);
    setTimeout(() => resolve({samples, bad, timeout: true}), seconds * 1000 + 5000);
  });
}
"""


def measure(page: Any, selector: str, seconds: float) -> dict[str, Any]:
    """Latency samples (ms) of the video matching ``selector`` over ``seconds``."""
    layout = [
        timecode.BITS,
        timecode.PER_ROW,
        timecode.BLOCK,
        timecode.ORIGIN[0],
        timecode.ORIGIN[1],
    ]
    result: dict[str, Any] = page.evaluate(READ_LATENCY, [selector, seconds, layout])
    return result


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation."""
    if not values:
        raise ValueError("no values")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]
