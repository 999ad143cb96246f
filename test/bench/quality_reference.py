"""Independent numpy reference for perception/isp/quality.ts: SSIM and MEF-SSIM on small images.

Usage: /usr/bin/python3 test/bench/quality_reference.py SOURCE.jpg OUT.json
Writes test/perception/fixtures/isp-quality-reference.json: 64x48 RGB8 images (base64, row-major
RGB) derived from SOURCE (downscaled, noisy, blurred, exposure brackets, fusions) and the expected
scores. cv2 is used only to read and downscale SOURCE; the metrics are plain numpy.

The metrics here are written the direct way, window by window, as the authors' MATLAB code does
(ssim_index.m; mef_ssim.m / mef_ms_ssim.m of Ma, Zeng, Wang 2015), so they share no formulation
with the TypeScript (which derives everything from separable filters of products).
"""
import base64
import json
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WIN = 11
EPS = np.finfo(np.float64).eps


def gaussian_window(n=WIN, sigma=1.5):
    # fspecial('gaussian', n, sigma)
    r = np.arange(n) - (n - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    return g / g.sum()


def windows(img):
    """(h-10, w-10, 121) patches at every 'valid' position, column order irrelevant."""
    v = sliding_window_view(img, (WIN, WIN))
    return v.reshape(v.shape[0], v.shape[1], WIN * WIN)


def ssim_plane(x, y, L):
    g = gaussian_window().ravel()
    px, py = windows(x.astype(np.float64)), windows(y.astype(np.float64))
    mx, my = px @ g, py @ g
    dx, dy = px - mx[..., None], py - my[..., None]
    vx, vy, cxy = (dx * dx) @ g, (dy * dy) @ g, (dx * dy) @ g
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(m.mean())


def ssim(a, b, L=255.0):
    if a.ndim == 2:
        return ssim_plane(a, b, L)
    return float(np.mean([ssim_plane(a[..., c], b[..., c], L) for c in range(3)]))


def psnr(a, b, peak=255.0):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))


def finite(v):
    """JSON has no Infinity: identical images' PSNR is written as null."""
    return None if np.isinf(v) else v


def rgb2gray(img):
    # MATLAB rgb2gray on uint8: weighted sum, rounded back to uint8.
    w = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.floor(img.astype(np.float64) @ w + 0.5)


def box_mean(img):
    return windows(img).mean(axis=2)


def mef_ssim_single(seq, f):
    """seq: (h, w, K) grey in [0, 255]; f: (h, w). Literal port of mef_ssim.m."""
    K = seq.shape[2]
    N = WIN * WIN
    mu = np.stack([box_mean(seq[..., k]) for k in range(K)], axis=2)
    ed = np.stack([
        np.sqrt(np.maximum(N * (box_mean(seq[..., k] ** 2) - mu[..., k] ** 2), 0)) + 0.001 for k in range(K)
    ], axis=2)
    vecs = np.stack([windows(seq[..., k]) for k in range(K)], axis=3)  # (oh, ow, N, K)
    centred = vecs - mu[:, :, None, :]
    denominator = np.linalg.norm(centred, axis=2).sum(axis=2)
    s = vecs.sum(axis=3)
    numerator = np.linalg.norm(s - s.mean(axis=2, keepdims=True), axis=2)
    R = (numerator + EPS) / (denominator + EPS)
    R[R > 1] = 1 - EPS
    R[R < 0] = 0 + EPS
    p = np.tan(np.pi / 2 * R)
    p[p > 10] = 10
    wmap = (ed / WIN) ** p[..., None] + EPS
    wmap = wmap / wmap.sum(axis=2, keepdims=True)
    max_ed = ed.max(axis=2)
    r = (wmap[:, :, None, :] * centred / ed[:, :, None, :]).sum(axis=3)
    rn = np.linalg.norm(r, axis=2)
    scale = np.where(rn > 0, max_ed / np.where(rn > 0, rn, 1), 1)
    r = r * scale[..., None]
    fv = windows(f)
    g = gaussian_window().ravel()
    m1, m2 = r @ g, fv @ g
    d1, d2 = r - m1[..., None], fv - m2[..., None]
    C = (0.03 * 255) ** 2
    q = (2 * ((d1 * d2) @ g) + C) / ((d1 * d1) @ g + (d2 * d2) @ g + C)
    return float(q.mean())


def downsample(img):
    # imfilter(img, ones(2)/4, 'symmetric', 'same') then img(1:2:end, 1:2:end)
    p = np.pad(img, ((0, 1), (0, 1)), mode="symmetric")
    d = (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]) / 4
    return d[::2, ::2]


def mef_ssim_multi(seq, f):
    weight = np.array([0.0448, 0.2856, 0.3001])
    weight = weight / weight.sum()
    Q = []
    for level in range(3):
        if level > 0:
            seq = np.stack([downsample(seq[..., k]) for k in range(seq.shape[2])], axis=2)
            f = downsample(f)
        Q.append(mef_ssim_single(seq, f))
    return float(np.prod(np.array(Q) ** weight)), Q


def srgb_to_linear(v):
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v):
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


def to8(v):
    return np.clip(np.floor(v + 0.5), 0, 255).astype(np.uint8)


def blur(img, sigma):
    r = np.arange(-4, 5)
    k = np.exp(-r * r / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(img.astype(np.float64), ((4, 4), (4, 4), (0, 0)), mode="edge")
    h = sum(k[i] * p[:, i:i + img.shape[1]] for i in range(9))
    v = sum(k[i] * h[i:i + img.shape[0]] for i in range(9))
    return to8(v)


def smooth(plane, sigma):
    """Gaussian blur of a 2-D float plane, radius 3 sigma, edges replicated."""
    rad = int(3 * sigma)
    r = np.arange(-rad, rad + 1)
    k = np.exp(-r * r / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(plane, rad, mode="edge")
    h = sum(k[i] * p[:, i:i + plane.shape[1]] for i in range(2 * rad + 1))
    return sum(k[i] * h[i:i + plane.shape[0]] for i in range(2 * rad + 1))


def main():
    import cv2  # only to read and downscale the source photo

    src, out = sys.argv[1], sys.argv[2]
    bgr = cv2.imread(src, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"quality_reference.py: cannot read '{src}'")
    clean = cv2.resize(bgr, (64, 48), interpolation=cv2.INTER_AREA)[..., ::-1].copy()
    rng = np.random.RandomState(20151101)
    images = {"clean": clean}
    for s in (5, 10, 20):
        images[f"noise{s}"] = to8(clean + rng.normal(0, s, clean.shape))
    images["blur1"] = blur(clean, 1.0)
    images["blur2"] = blur(clean, 2.0)
    # Brackets of a scene with more range than the frame: double the log-radiance contrast around
    # its geometric mean (mapped to 18% grey), then expose at -2, 0, +2 EV. The mid exposure clips
    # about a quarter of the pixels, and is the best single bracket.
    lin0 = srgb_to_linear(clean / 255.0)
    lin = 0.18 * (lin0 / np.exp(np.mean(np.log(lin0 + 1e-4)))) ** 2
    for name, ev in (("under", -2), ("mid", 0), ("over", 2)):
        images[name] = to8(255 * linear_to_srgb(lin * 2.0 ** ev))
    b = np.stack([images[n].astype(np.float64) / 255 for n in ("under", "mid", "over")], axis=0)
    # Mertens-style well-exposedness (product over channels, sigma 0.2): per pixel it leaves seams,
    # smoothed (Gaussian sigma 4 px) it is a reasonable fusion.
    wexp = np.prod(np.exp(-((b - 0.5) ** 2) / (2 * 0.2 ** 2)), axis=3, keepdims=True) + 1e-12
    images["fusedSeams"] = to8(255 * (wexp * b).sum(0) / wexp.sum(0))
    wsmooth = np.stack([smooth(w[..., 0], 4.0)[..., None] for w in wexp], axis=0)
    images["fusedSmooth"] = to8(255 * (wsmooth * b).sum(0) / wsmooth.sum(0))
    images["fusedMean"] = to8(255 * b.mean(0))
    images["grey"] = np.full_like(clean, 128)

    ssim_cases = []
    for test in ("clean", "noise5", "noise10", "noise20", "blur1", "blur2"):
        a, t = images["clean"], images[test]
        ssim_cases.append({
            "reference": "clean", "test": test, "psnr": finite(psnr(a, t)), "ssim": ssim(a, t),
            "ssimGreen": ssim(a[..., 1], t[..., 1]),
        })
    mef_cases = []
    brackets = ["under", "mid", "over"]
    seq = np.stack([rgb2gray(images[n]) for n in brackets], axis=2)
    for fused in ("fusedSmooth", "fusedSeams", "fusedMean", "under", "mid", "over", "grey"):
        f = rgb2gray(images[fused])
        multi, scales = mef_ssim_multi(seq, f)
        mef_cases.append({
            "brackets": brackets, "fused": fused, "single": mef_ssim_single(seq, f), "multi": multi, "scales": scales,
        })
    fixture = {
        "generator": "test/bench/quality_reference.py (numpy " + np.__version__ + ")",
        "source": "pandaset-002/camera/00.jpg, INTER_AREA to 64x48",
        "width": 64, "height": 48,
        "images": {k: base64.b64encode(np.ascontiguousarray(v).tobytes()).decode() for k, v in images.items()},
        "ssim": ssim_cases,
        "mefSsim": mef_cases,
    }
    with open(out, "w") as fh:
        json.dump(fixture, fh, indent=1)
        fh.write("\n")
    for c in ssim_cases:
        print("ssim", c["test"], c["psnr"] and round(c["psnr"], 3), round(c["ssim"], 5), round(c["ssimGreen"], 5))
    for c in mef_cases:
        print("mef", c["fused"], round(c["single"], 5), round(c["multi"], 5), [round(q, 5) for q in c["scales"]])


if __name__ == "__main__":
    main()
