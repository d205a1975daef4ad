"""Draws the nnstudio icon: a small three-layer network on a rounded tile.

Writes resources/icons/nnstudio.svg (hand-written SVG, the source of truth for scalable sizes) and
resources/icons/nnstudio.png (256x256, rendered with QPainter so no SVG renderer is needed).
Run it again after changing the drawing: python packaging/make_icon.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZE = 256
TILE = "#1f3a5f"
TILE_EDGE = "#16304f"
EDGE = "#8fb8de"
NODE_IN = "#ffb347"
NODE_HIDDEN = "#ffffff"
NODE_OUT = "#5fd38d"
# Node centres, in a 256-unit box: 3 inputs, 4 hidden, 2 outputs.
LAYERS = [
    [(64, 80), (64, 128), (64, 176)],
    [(128, 60), (128, 104), (128, 152), (128, 196)],
    [(192, 104), (192, 152)],
]
COLOURS = [NODE_IN, NODE_HIDDEN, NODE_OUT]
RADIUS = 14
EDGE_WIDTH = 5


def edges():
    for left, right in zip(LAYERS, LAYERS[1:]):
        for a in left:
            for b in right:
                yield a, b


def svg() -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">',
        "  <title>nnstudio</title>",
        f'  <rect x="8" y="8" width="240" height="240" rx="48" fill="{TILE}" stroke="{TILE_EDGE}" stroke-width="4"/>',
        f'  <g stroke="{EDGE}" stroke-width="{EDGE_WIDTH}" stroke-linecap="round" opacity="0.85">',
    ]
    parts += [f'    <line x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}"/>' for a, b in edges()]
    parts.append("  </g>")
    for layer, colour in zip(LAYERS, COLOURS):
        parts += [
            f'  <circle cx="{x}" cy="{y}" r="{RADIUS}" fill="{colour}" stroke="{TILE_EDGE}" stroke-width="3"/>'
            for x, y in layer
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def png(path: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPen

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(QColor(TILE_EDGE), 4))
    p.setBrush(QColor(TILE))
    p.drawRoundedRect(QRectF(8, 8, 240, 240), 48, 48)
    edge_colour = QColor(EDGE)
    edge_colour.setAlphaF(0.85)
    p.setPen(QPen(edge_colour, EDGE_WIDTH, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    for a, b in edges():
        p.drawLine(QPointF(*a), QPointF(*b))
    p.setPen(QPen(QColor(TILE_EDGE), 3))
    for layer, colour in zip(LAYERS, COLOURS):
        p.setBrush(QColor(colour))
        for x, y in layer:
            p.drawEllipse(QPointF(x, y), RADIUS, RADIUS)
    p.end()
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    del app


def main() -> int:
    icons = Path(__file__).resolve().parent.parent / "resources" / "icons"
    icons.mkdir(parents=True, exist_ok=True)
    (icons / "nnstudio.svg").write_text(svg(), encoding="utf-8")
    png(icons / "nnstudio.png")
    print(f"wrote {icons / 'nnstudio.svg'} and {icons / 'nnstudio.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
