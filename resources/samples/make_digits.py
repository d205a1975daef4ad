"""Writes resources/samples/digits/<class>/<index>.png from scikit-learn's bundled 8×8 digits (1,797 images).

Run once by hand: python resources/samples/make_digits.py (needs scikit-learn, which reads the digits from a file
inside its own package; nothing is downloaded). nnstudio itself never imports scikit-learn.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent


def main() -> None:
    digits = load_digits()
    out = HERE / "digits"
    for k in range(10):
        (out / str(k)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        pixels = np.rint(image * (255.0 / 16.0)).astype(np.uint8)  # 0..16 ink to 0..255, white ink on black
        Image.fromarray(pixels, mode="L").save(out / str(label) / f"{i:04d}.png", optimize=True)


if __name__ == "__main__":
    main()
