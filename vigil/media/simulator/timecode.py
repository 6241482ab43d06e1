"""The simulator clock mount's machine-readable time code.

The ``/clock`` mount burns the UTC wall clock, in milliseconds, into every picture as
48 bits plus an 8-bit check (the sum of the 6 value bytes, XOR 0x5A), most significant
bit first, as white (1) or black (0) squares of ``BLOCK`` pixels on two rows of
``PER_ROW``, from ``ORIGIN`` (top left) of the 640x360 picture. A latency test reads
the squares back from the decoded picture (in a browser canvas or a decoded frame) and
compares the time with its own clock.

Pure Python: imported by the GStreamer server (system Python) and by the tests.
"""

from __future__ import annotations

BITS = 56
PER_ROW = 28
BLOCK = 20
ORIGIN = (40, 16)
WIDTH = 640
HEIGHT = 360


def bits_for(ms: int) -> list[int]:
    """The 56 bits burnt in for ``ms``."""
    value = ms & (2**48 - 1)
    check = (sum(value.to_bytes(6, "big")) & 0xFF) ^ 0x5A
    word = (value << 8) | check
    return [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]


def block_centre(i: int) -> tuple[int, int]:
    """Pixel at the centre of bit ``i``'s square."""
    x0, y0 = ORIGIN
    return x0 + (i % PER_ROW) * BLOCK + BLOCK // 2, y0 + (i // PER_ROW) * BLOCK + BLOCK // 2


def svg(ms: int) -> str:
    """The time code for ``ms`` as an SVG overlay of the whole picture."""
    x0, y0 = ORIGIN
    rows = BITS // PER_ROW
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}'>",
        f"<rect x='{x0 - 4}' y='{y0 - 4}' width='{PER_ROW * BLOCK + 8}' "
        f"height='{rows * BLOCK + 8}' fill='#000'/>",
    ]
    for i, bit in enumerate(bits_for(ms)):
        if bit:
            x = x0 + (i % PER_ROW) * BLOCK
            y = y0 + (i // PER_ROW) * BLOCK
            parts.append(f"<rect x='{x}' y='{y}' width='{BLOCK}' height='{BLOCK}' fill='#fff'/>")
    parts.append("</svg>")
    return "".join(parts)


def decode(gray: bytes, width: int = WIDTH, height: int = HEIGHT) -> int | None:
    """The milliseconds in a decoded picture (8-bit luma/grey, ``width`` x ``height``,
    scaled from 640x360 if needed), or None when the check fails."""
    sx = width / WIDTH
    sy = height / HEIGHT
    word = 0
    for i in range(BITS):
        cx, cy = block_centre(i)
        total = 0
        n = 0
        for dy in (-4, 0, 4):
            for dx in (-4, 0, 4):
                x = int((cx + dx) * sx)
                y = int((cy + dy) * sy)
                total += gray[y * width + x]
                n += 1
        word = (word << 1) | (1 if total / n > 128 else 0)
    value = word >> 8
    check = (sum(value.to_bytes(6, "big")) & 0xFF) ^ 0x5A
    return value if check == word & 0xFF else None
