"""OpenCV's Mertens exposure fusion (cv2.createMergeMertens, default weights) as the reference for
perception/isp/fusion.ts.

Usage:
  python3 opencv_mertens_fixture.py FIXTURE.json   writes the test fixture
      (test/perception/fixtures/mertens-opencv.json): three 64x48 rgb8 brackets (-2, 0, +2 EV,
      synthesized in linear light from pandaset-002 camera frame 00 as perception/isp/brackets.ts
      does) and OpenCV's fused output, unclipped float32. Pixel data is base64 (rgb8 bytes, float32
      little-endian) to keep the file small.
  python3 opencv_mertens_fixture.py --bench [W H]  prints the median wall and CPU ms of process() on three
      WxH brackets (default 1280x720), single-threaded and with OpenCV's default thread count.
Channel 0 is red throughout; OpenCV's Mertens converts to grey with COLOR_RGB2GRAY, so passing RGB
arrays matches the TypeScript port. Exits 3 when cv2 is not installed (Debian: python3-opencv).
"""
import base64
import json
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError:
    sys.exit(3)

FRAME = "/work/shared/data/pandaset-002/camera/00.jpg"
EV_STOPS = (-2, 0, 2)


def srgb_to_linear(e):
    return np.where(e <= 0.04045, e / 12.92, ((e + 0.055) / 1.055) ** 2.4)


def linear_to_srgb8(lin):
    v = np.clip(lin, 0, 1)
    e = np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)
    return np.round(255 * e).astype(np.uint8)


def brackets(width, height):
    rgb = cv2.cvtColor(cv2.imread(FRAME), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    lin = srgb_to_linear(rgb.astype(np.float64) / 255)
    return [linear_to_srgb8(lin * 2.0**ev) for ev in EV_STOPS]


def bench(width, height):
    imgs = brackets(width, height)
    result = {"opencvVersion": cv2.__version__, "size": [width, height], "brackets": len(imgs)}
    for threads in (1, cv2.getNumThreads()):
        cv2.setNumThreads(threads)
        merge = cv2.createMergeMertens(1, 1, 1)
        merge.process(imgs)
        times, cpu = [], []
        for _ in range(9):
            start, start_cpu = time.perf_counter(), time.process_time()
            merge.process(imgs)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        result[f"medianMs{threads}Thread"] = sorted(times)[len(times) // 2]
        # CPU time of the process (all threads): on a shared machine, wall time also counts waiting.
        result[f"medianCpuMs{threads}Thread"] = sorted(cpu)[len(cpu) // 2]
    print(json.dumps(result))


def fixture(path, width=64, height=48):
    imgs = brackets(width, height)
    fused = cv2.createMergeMertens(1, 1, 1).process(imgs).astype("<f4")
    out = {
        "source": "pandaset-002 camera/00.jpg, INTER_AREA to 64x48, brackets in linear light",
        "opencvVersion": cv2.__version__,
        "width": width,
        "height": height,
        "evStops": list(EV_STOPS),
        "brackets": [base64.b64encode(b.tobytes()).decode() for b in imgs],
        "fused": base64.b64encode(fused.tobytes()).decode(),
    }
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    if sys.argv[1] == "--bench":
        bench(*(int(a) for a in sys.argv[2:4])) if len(sys.argv) >= 4 else bench(1280, 720)
    else:
        fixture(sys.argv[1])
