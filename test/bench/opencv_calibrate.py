"""OpenCV's calibrateCamera on the same images, as the calibrate benchmark's reference.

Usage: python3 opencv_calibrate.py COLS ROWS SQUARE_M FIX_ASPECT(0|1) IMAGE...
Prints one JSON object: fx, fy, cx, cy, distortion, rms, ms (detection + sub-pixel + calibration),
views (images with a board), cornersPx (per image, x y row-major as
OpenCV orders them; the test fixture test/calibration/fixtures/opencv-chessboard-corners.json is
this output). Exits 3 when cv2 is not installed (Debian: python3-opencv).
"""
import json
import os
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError:
    sys.exit(3)

cols, rows, square_m, fix_aspect = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
paths = sys.argv[5:]
board = np.zeros((cols * rows, 3), np.float32)
board[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square_m

start = time.perf_counter()
object_points, image_points, used, size = [], [], [], None
corners_by_image = {}
for path in paths:
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    size = gray.shape[::-1]
    found, corners = cv2.findChessboardCorners(
        gray, (cols, rows), cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_FAST_CHECK | cv2.CALIB_CB_NORMALIZE_IMAGE
    )
    if not found:
        continue
    # The settings of OpenCV's own calibration sample (samples/cpp/calibration.cpp).
    cv2.cornerSubPix(gray, corners, (11, 11), (-1, -1), (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 30, 0.0001))
    object_points.append(board)
    image_points.append(corners)
    used.append(path)
    corners_by_image[os.path.basename(path)] = [round(float(v), 4) for v in corners.ravel()]
flags = cv2.CALIB_FIX_ASPECT_RATIO if fix_aspect else 0
rms, k, dist, _, _ = cv2.calibrateCamera(object_points, image_points, size, np.eye(3), None, flags=flags)
ms = (time.perf_counter() - start) * 1000
print(json.dumps({
    "fx": k[0, 0], "fy": k[1, 1], "cx": k[0, 2], "cy": k[1, 2],
    "distortion": [float(d) for d in dist.ravel()], "rms": rms, "ms": ms, "views": used,
    "opencvVersion": cv2.__version__, "cornersPx": corners_by_image,
}))
