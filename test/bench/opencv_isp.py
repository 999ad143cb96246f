"""OpenCV's non-local-means denoiser and Mertens exposure fusion, as the ISP benchmark's reference.

Usage: /usr/bin/python3 opencv_isp.py JOB.json

JOB.json:
  {"repeats": 3,
   "denoise": [{"input": "/abs/noisy.png", "output": "/abs/out.png", "h": 10.0, "hColor": 10.0,
                "templateWindowSize": 7, "searchWindowSize": 21}],
   "fusion": [{"inputs": ["/abs/b0.png", "/abs/b1.png", "/abs/b2.png"], "output": "/abs/fused.png"}]}
  "denoise" and "fusion" may be missing or empty; fusion entries may also set "contrastWeight",
  "saturationWeight", "exposureWeight" (default 1.0 each: Mertens et al.'s three weights, as ours
  uses them; note OpenCV's own createMergeMertens() default turns the exposure weight off, 0.0).

Runs cv2.fastNlMeansDenoisingColored and cv2.createMergeMertens(c, s, e).process with
cv2.setNumThreads(2), one warm-up call then `repeats` timed calls (time.perf_counter, the OpenCV
call only: no decoding or encoding). Prints one JSON line:
  {"opencv": "4.6.0", "threads": 2, "repeats": 3,
   "denoise": [{"output": ..., "width": W, "height": H, "bitDepth": 8, "ms": [...], "medianMs": ...}],
   "fusion": [{"output": ..., "width": W, "height": H, "bitDepth": 16, "clippedFraction": ...,
               "ms": [...], "medianMs": ...}]}

Colour order: images on disk are ordinary RGB PNGs; cv2.imread gives BGR and cv2.imwrite expects
BGR, and both OpenCV calls take BGR (the denoiser converts BGR to Lab), so pixels stay in BGR
between the two and the files written are ordinary RGB PNGs again.

Mertens output is float (about [0, 1], slightly beyond where the pyramid overshoots): it is
clipped to [0, 1] and written as a 16-bit PNG (round(v * 65535)), so the reader gets it without
8-bit rounding; "clippedFraction" says how many values were outside [0, 1]. Denoised output is
8-bit, as OpenCV returns it. Reading the 16-bit PNG with sharp needs
`sharp(path).toColourspace('rgb16').raw({ depth: 'ushort' })`: `.raw({ depth: 'ushort' })` alone
gives values in 0..255 (sharp converts to its 8-bit sRGB interpretation first).

Exit codes: 0 ok; 2 bad job (unreadable or invalid JSON, missing field, missing or unreadable
image, size mismatch, parameters OpenCV rejects, unwritable output), the message on stderr; 3 cv2 or numpy not installed
(Debian: python3-opencv).
"""
import json
import os
import statistics
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError:
    print("opencv_isp.py: cv2/numpy not installed (Debian: python3-opencv)", file=sys.stderr)
    sys.exit(3)

THREADS = 2


class JobError(Exception):
    pass


def field(entry, key, kind, where, default=None):
    if key not in entry:
        if default is not None:
            return default
        raise JobError(f"{where}: missing field '{key}'")
    value = entry[key]
    # bool is an int in Python; a flag is never a size or a strength.
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise JobError(f"{where}: field '{key}' must be {names}, got {json.dumps(value)}")
    return value


def read(path, where):
    if not isinstance(path, str) or not os.path.isfile(path):
        raise JobError(f"{where}: image not found: {path}")
    img = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, 8-bit, alpha dropped
    if img is None:
        raise JobError(f"{where}: cannot decode image: {path}")
    return img


def write(path, img, where):
    if not isinstance(path, str):
        raise JobError(f"{where}: field 'output' must be a path, got {json.dumps(path)}")
    try:
        ok = cv2.imwrite(path, img)
    except cv2.error:  # some builds raise instead of returning False
        ok = False
    if not ok:
        raise JobError(f"{where}: cannot write image: {path}")


def timed(call, repeats, where):
    """One warm-up call (first-call allocations, thread pool start), then `repeats` timed calls."""
    try:
        result = call()
    except cv2.error as e:  # e.g. parameters OpenCV rejects; the first line says which
        raise JobError(f"{where}: OpenCV failed: {str(e).strip().splitlines()[-1]}")
    ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        ms.append((time.perf_counter() - start) * 1000)
    return result, ms


def denoise(entry, repeats, where):
    if not isinstance(entry, dict):
        raise JobError(f"{where}: must be an object")
    src = read(field(entry, "input", str, where), where)
    h = float(field(entry, "h", (int, float), where))
    h_color = float(field(entry, "hColor", (int, float), where))
    template = field(entry, "templateWindowSize", int, where)
    search = field(entry, "searchWindowSize", int, where)
    out, ms = timed(lambda: cv2.fastNlMeansDenoisingColored(src, None, h, h_color, template, search), repeats, where)
    output = field(entry, "output", str, where)
    write(output, out, where)
    return {"output": output, "width": src.shape[1], "height": src.shape[0], "bitDepth": 8,
            "ms": ms, "medianMs": statistics.median(ms)}


def fusion(entry, repeats, where):
    if not isinstance(entry, dict):
        raise JobError(f"{where}: must be an object")
    inputs = field(entry, "inputs", list, where)
    if len(inputs) < 2:
        raise JobError(f"{where}: 'inputs' needs at least 2 brackets, got {len(inputs)}")
    images = [read(p, f"{where}.inputs[{k}]") for k, p in enumerate(inputs)]
    for k, img in enumerate(images):
        if img.shape != images[0].shape:
            raise JobError(f"{where}: brackets differ in size: inputs[0] is {images[0].shape[1]}x{images[0].shape[0]}, "
                           f"inputs[{k}] is {img.shape[1]}x{img.shape[0]}")
    merge = cv2.createMergeMertens(
        float(field(entry, "contrastWeight", (int, float), where, 1.0)),
        float(field(entry, "saturationWeight", (int, float), where, 1.0)),
        float(field(entry, "exposureWeight", (int, float), where, 1.0)),
    )
    fused, ms = timed(lambda: merge.process(images), repeats, where)
    clipped = float(np.mean((fused < 0) | (fused > 1)))
    out16 = np.round(np.clip(fused, 0, 1) * 65535).astype(np.uint16)
    output = field(entry, "output", str, where)
    write(output, out16, where)
    return {"output": output, "width": fused.shape[1], "height": fused.shape[0], "bitDepth": 16,
            "clippedFraction": clipped, "ms": ms, "medianMs": statistics.median(ms)}


def main(argv):
    if len(argv) != 2:
        raise JobError("usage: opencv_isp.py JOB.json")
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as fh:
            job = json.load(fh)
    except FileNotFoundError:
        raise JobError(f"job file not found: {path}")
    except OSError as e:
        raise JobError(f"cannot read job file {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise JobError(f"job file {path} is not valid JSON: {e}")
    if not isinstance(job, dict):
        raise JobError(f"job file {path}: must hold a JSON object")
    repeats = field(job, "repeats", int, "job", 3)
    if repeats < 1:
        raise JobError(f"job: 'repeats' must be at least 1, got {repeats}")
    denoise_jobs = field(job, "denoise", list, "job", [])
    fusion_jobs = field(job, "fusion", list, "job", [])
    cv2.setNumThreads(THREADS)
    result = {
        "opencv": cv2.__version__,
        "threads": cv2.getNumThreads(),
        "repeats": repeats,
        "denoise": [denoise(e, repeats, f"denoise[{k}]") for k, e in enumerate(denoise_jobs)],
        "fusion": [fusion(e, repeats, f"fusion[{k}]") for k, e in enumerate(fusion_jobs)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except JobError as e:
        print(f"opencv_isp.py: {e}", file=sys.stderr)
        sys.exit(2)
