"""Draws the app's PNG icons (the SVG's picture: a white speech bubble on blue) with the
standard library only, so they can be redrawn anywhere: python3 app/icons.py"""

import struct
import zlib
from pathlib import Path

BLUE = (0x1A, 0x5F, 0xD0)
WHITE = (0xFF, 0xFF, 0xFF)


def inside_rounded(x, y, left, top, right, bottom, radius):
    cx = min(max(x, left + radius), right - radius)
    cy = min(max(y, top + radius), bottom - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def colour(u, v):
    """The colour at (u, v) in the SVG's 64x64 coordinates; None is transparent."""
    if not inside_rounded(u, v, 0, 0, 64, 64, 14):
        return None
    bubble = inside_rounded(u, v, 10, 18, 54, 44, 4)
    # The tail: a triangle from (20, 44) down to (20, 52) and across to (30, 44).
    tail = 20 <= u <= 30 and 44 <= v <= 52 - (u - 20) * 0.8
    if bubble or tail:
        for dot in (24, 32, 40):
            if (u - dot) ** 2 + (v - 31) ** 2 <= 9:
                return BLUE
        return WHITE
    return BLUE


def png(size):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            # Four samples a pixel, for smooth edges.
            samples = [colour((x + dx) * 64 / size, (y + dy) * 64 / size)
                       for dx in (0.25, 0.75) for dy in (0.25, 0.75)]
            opaque = [s for s in samples if s]
            alpha = round(255 * len(opaque) / 4)
            rgb = [round(sum(s[i] for s in opaque) / len(opaque)) if opaque else 0 for i in range(3)]
            row.extend(rgb + [alpha])
        rows.append(bytes(row))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    here = Path(__file__).parent
    for size in (192, 512):
        (here / f"icon-{size}.png").write_bytes(png(size))
