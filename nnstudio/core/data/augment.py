"""Image augmentation per training batch, on the training device, with torch ops only (no torchvision).

`[data.augment]` in a run config: `hflip = true`, `random_crop = 4` (padding in pixels), `rotation = 10`
(degrees, either way), `color_jitter = 0.2` (brightness and contrast factors within 1 ± 0.2). Training
batches only: validation, test and prediction see the images as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from nnstudio.core.errors import DataError

AUGMENT_KEYS = {"hflip": bool, "random_crop": int, "rotation": float, "color_jitter": float}


@dataclass
class Augment:
    hflip: bool = False
    random_crop: int = 0
    rotation: float = 0.0
    color_jitter: float = 0.0

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, where: str = "[data.augment]") -> Augment | None:
        """None when nothing is switched on; DataError naming the key when a value is wrong."""
        if not raw:
            return None
        unknown = set(raw) - set(AUGMENT_KEYS)
        if unknown:
            raise DataError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(AUGMENT_KEYS)}")
        out = cls()
        for key, kind in AUGMENT_KEYS.items():
            if key not in raw:
                continue
            value = raw[key]
            if kind is bool and not isinstance(value, bool):
                raise DataError(f"{where} {key} must be true or false, got {value!r}")
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise DataError(f"{where} {key} must be a whole number of pixels, 0 or more, got {value!r}")
            if kind is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                    raise DataError(f"{where} {key} must be a number, 0 or more, got {value!r}")
                if key == "rotation" and value > 180:
                    raise DataError(f"{where} rotation must be at most 180 degrees, got {value!r}")
                if key == "color_jitter" and value >= 1:
                    raise DataError(f"{where} color_jitter must be below 1, got {value!r}")
                value = float(value)
            setattr(out, key, value)
        return out if out.active else None

    @property
    def active(self) -> bool:
        return bool(self.hflip or self.random_crop or self.rotation or self.color_jitter)

    def to_dict(self) -> dict[str, Any]:
        return {"hflip": self.hflip, "random_crop": self.random_crop, "rotation": self.rotation,
                "color_jitter": self.color_jitter}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of raw pixels (uint8 or float, N×C×H×W, 0–255) to augmented float pixels in 0–255."""
        x = x.float()
        n, _, h, w = x.shape
        dev = x.device
        if self.hflip:
            flip = (torch.rand(n, device=dev) < 0.5).view(n, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)
        if self.random_crop:
            p = self.random_crop
            padded = F.pad(x, (p, p, p, p))
            oy = torch.randint(0, 2 * p + 1, (n,), device=dev)
            ox = torch.randint(0, 2 * p + 1, (n,), device=dev)
            rows = (oy[:, None] + torch.arange(h, device=dev)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * p)
            x = padded.gather(2, rows)
            cols = (ox[:, None] + torch.arange(w, device=dev)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
            x = x.gather(3, cols)
        if self.rotation:
            angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(self.rotation)
            cos, sin = angle.cos(), angle.sin()
            zero = torch.zeros_like(cos)
            theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.color_jitter:
            s = self.color_jitter
            bright = 1 + (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * s
            contrast = 1 + (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * s
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * contrast + mean) * bright
            x = x.clamp(0, 255)
        return x
