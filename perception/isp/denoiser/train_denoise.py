#!/usr/bin/env python3
"""Trains arhud's learned denoiser (run by `npm run train:denoise`, which prepares the data).

The network: a small two-level U-Net on the pixel-unshuffled frame, predicting the noise
(residual learning, as DnCNN/FFDNet), conditioned on the sensor's noise level (FFDNet-style; here
as a learned per-channel bias from the two noise parameters, which is what a constant noise-map
input channel amounts to, without a full-size input plane):

  (shipped model: 8-bit 1xHxWx3 in and out, converted inside the graph)
  noisy sRGB [0,1], 1x3xHxW  --pixel-unshuffle 2-->  u: 12 x H/2 x W/2
  e = ReLU(conv3x3 12->C (u) + noise bias)                          half resolution
  d = ReLU(conv3x3 stride 2, C->2C (e) + noise bias)                quarter resolution
  DEPTH x [d = ReLU(conv3x3 2C->2C (d))]
  h = ReLU(e + pixel-shuffle(conv3x3 2C->4C (d)))                   back to half resolution
  h = ReLU(conv3x3 C->C (h));  noise = pixel-shuffle(conv3x3 C->12 (h))
  denoised = noisy - noise

Why this shape: NLM searches 21x21 windows; denoising strong noise needs a wide view, but a
CPU has to run this on every 720p frame. The quarter-resolution path gives a receptive field of
~50 px at a quarter of the cost per layer; the half-resolution layers keep edges.

Data: a directory written by the TypeScript driver (the sensor noise model lives there, once):
  meta.json   {"train": N, "val": M, "cropPx": S, "noiseInputScale": {...}}
  train.bin   N x (clean S*S*3 uint8, noisy S*S*3 uint8), HWC
  train-noise.bin  N x 2 float32 (the network's noise inputs)
  train-weight.bin N float32: each crop's weight in the loss (see train.ts: equal say per noise level)
  val.bin, val-noise.bin  the same for M held-out crops (from frames never trained on)

Prints one JSON object per progress line ({"step":..,"loss":..,"valPsnr":..}) and a final
{"done": true, ...}; writes the ONNX model (opset 13, dynamic H and W) to --output.
Deterministic for a seed on this CPU build (torch.use_deterministic_algorithms).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


class Denoiser(torch.nn.Module):
    def __init__(self, channels: int, depth: int):
        super().__init__()
        c, c2 = channels, 2 * channels
        self.encode = torch.nn.Conv2d(12, c, 3, padding=1)
        self.noise_half = torch.nn.Linear(2, c, bias=False)
        self.down = torch.nn.Conv2d(c, c2, 3, stride=2, padding=1)
        self.noise_quarter = torch.nn.Linear(2, c2, bias=False)
        self.quarter = torch.nn.ModuleList([torch.nn.Conv2d(c2, c2, 3, padding=1) for _ in range(depth)])
        self.up = torch.nn.Conv2d(c2, 4 * c, 3, padding=1)
        self.refine = torch.nn.Conv2d(c, c, 3, padding=1)
        self.decode = torch.nn.Conv2d(c, 12, 3, padding=1)

    def forward(self, image, noise):
        return image - F.pixel_shuffle(self.noise_of(F.pixel_unshuffle(image, 2), noise), 2)

    def noise_of(self, u, noise):
        """The predicted noise, unshuffled (12 channels at half resolution), of the unshuffled frame u."""
        e = F.relu(self.encode(u) + self.noise_half(noise)[:, :, None, None])
        d = F.relu(self.down(e) + self.noise_quarter(noise)[:, :, None, None])
        for conv in self.quarter:
            d = F.relu(conv(d))
        h = F.relu(e + F.pixel_shuffle(self.up(d), 2))
        h = F.relu(self.refine(h))
        return self.decode(h)


class Uint8Wrapper(torch.nn.Module):
    """What ships: 8-bit HWC frames in and out, so conversion runs inside ORT (multi-threaded).

    The layout changes are folded into the pixel (un)shuffles: one transpose from HWC straight to the
    unshuffled 12-channel layout, one back (ORT spent a fifth of its time on separate transposes and
    depth-to-space at 720p). Channel order as torch's pixel_unshuffle: c * 4 + dy * 2 + dx.
    """

    def __init__(self, model: Denoiser):
        super().__init__()
        self.model = model

    def forward(self, image, noise):
        n, h, w, _ = image.shape
        x = image.float() / 255
        u = x.reshape(n, h // 2, 2, w // 2, 2, 3).permute(0, 5, 2, 4, 1, 3).reshape(n, 12, h // 2, w // 2)
        residual = self.model.noise_of(u, noise)
        r = residual.reshape(n, 3, 2, 2, h // 2, w // 2).permute(0, 4, 2, 5, 3, 1).reshape(n, h, w, 3)
        y = (x - r).clamp(0, 1) * 255
        return torch.round(y).to(torch.uint8)


def load_split(data_dir: str, name: str, count: int, crop: int):
    pairs = np.fromfile(os.path.join(data_dir, f"{name}.bin"), dtype=np.uint8)
    expected = count * 2 * crop * crop * 3
    if pairs.size != expected:
        sys.exit(f"train_denoise: {name}.bin has {pairs.size} bytes, meta.json says {count} pairs of {crop}x{crop} ({expected} bytes)")
    pairs = pairs.reshape(count, 2, crop, crop, 3)
    noise = np.fromfile(os.path.join(data_dir, f"{name}-noise.bin"), dtype=np.float32)
    if noise.size != count * 2:
        sys.exit(f"train_denoise: {name}-noise.bin has {noise.size} floats, expected {count * 2}")
    weight = np.fromfile(os.path.join(data_dir, f"{name}-weight.bin"), dtype=np.float32)
    if weight.size != count:
        sys.exit(f"train_denoise: {name}-weight.bin has {weight.size} floats, expected {count}")
    to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # uint8 NCHW
    return to_tensor(pairs[:, 0]), to_tensor(pairs[:, 1]), torch.from_numpy(noise.reshape(count, 2)), torch.from_numpy(weight)


def psnr(mse: float) -> float:
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", required=True, help="training config JSON (seed, channels, depth, steps, batch, lr)")
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)

    torch.manual_seed(config["seed"])
    torch.set_num_threads(config.get("threads", 2))
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(config["seed"])

    crop = meta["cropPx"]
    clean, noisy, noise, weight = load_split(args.data, "train", meta["train"], crop)
    val_clean, val_noisy, val_noise, _ = load_split(args.data, "val", meta["val"], crop)
    model = Denoiser(config["channels"], config["depth"])
    steps, batch = config["steps"], config["batch"]
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["lr"], total_steps=steps, pct_start=0.05)

    def validate():
        model.eval()
        with torch.no_grad():
            total, noisy_total = 0.0, 0.0
            for i in range(0, val_clean.shape[0], 64):
                c = val_clean[i : i + 64].float() / 255
                n = val_noisy[i : i + 64].float() / 255
                out = model(n, val_noise[i : i + 64]).clamp(0, 1)
                # Quantized as the runtime delivers it (8-bit frames).
                out = torch.round(out * 255) / 255
                total += F.mse_loss(out, c, reduction="sum").item()
                noisy_total += F.mse_loss(n, c, reduction="sum").item()
            count = val_clean.numel()
        model.train()
        return psnr(total / count), psnr(noisy_total / count)

    started = time.perf_counter()
    running = 0.0
    for step in range(1, steps + 1):
        index = torch.randint(0, clean.shape[0], (batch,), generator=generator)
        c = clean[index].float() / 255
        n = noisy[index].float() / 255
        # Flips and 90-degree turns: the noise is per pixel and independent, so it stays valid.
        k = int(torch.randint(0, 4, (1,), generator=generator))
        if k:
            c, n = torch.rot90(c, k, (2, 3)), torch.rot90(n, k, (2, 3))
        if int(torch.randint(0, 2, (1,), generator=generator)):
            c, n = c.flip(3), n.flip(3)
        per_crop = ((model(n, noise[index]) - c) ** 2).mean(dim=(1, 2, 3))
        loss = (per_crop * weight[index]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        running += loss.item()
        if step % config["logEvery"] == 0 or step == steps:
            line = {"step": step, "loss": running / (config["logEvery"] if step % config["logEvery"] == 0 else step % config["logEvery"]), "elapsedS": round(time.perf_counter() - started, 1)}
            running = 0.0
            if step % config["validateEvery"] == 0 or step == steps:
                line["valPsnr"], line["valPsnrNoisy"] = validate()
            print(json.dumps(line), flush=True)

    val_psnr, val_noisy_psnr = validate()
    model.eval()
    example = (torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8), torch.zeros(1, 2))
    torch.onnx.export(
        Uint8Wrapper(model), example, args.output, opset_version=13, input_names=["image", "noise"], output_names=["denoised"],
        dynamic_axes={"image": {1: "height", 2: "width"}, "denoised": {1: "height", 2: "width"}},
    )
    print(json.dumps({"done": True, "steps": steps, "valPsnr": val_psnr, "valPsnrNoisy": val_noisy_psnr, "parameters": sum(p.numel() for p in model.parameters()), "trainSeconds": round(time.perf_counter() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
