#!/usr/bin/env python3
"""PyTorch side of bench/train.ts: trains one model on the first N MNIST training images (read from the same
IDX files as wgrad) with the same architecture, loss, optimizer and batch size, and prints one JSON line:
{"model", "samples_per_sec", "seconds", "images", "final_loss", "peak_rss_mb", "threads", "torch"}.

One warm-up epoch (allocations, first-call costs), then whole timed epochs until --min-seconds (3 s) have
passed, with a shuffled DataLoader-like loop over in-memory tensors (the data are in memory on both sides).
With --warmup-steps W: W warm-up steps instead, then timed steps (cycling through shuffled epochs) until
--min-seconds have passed; this is what bench/train.ts uses, one such run per round.

  /usr/bin/python3 bench/torch_train.py --model conv-vae --mnist-dir DIR [--images 10000] [--batch 128]
                                        [--warmup-steps 3 --min-seconds 3]
"""
import argparse
import json
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx_images(path, limit):
    with open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            sys.exit(f"{path}: not an IDX image file (magic {magic})")
        n = min(n, limit)
        data = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return torch.from_numpy(data.reshape(n, 1, rows, cols).astype(np.float32) / 255.0)


class MLPVAE(nn.Module):  # PyTorch's VAE example: 784-400-20
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class ConvVAE(nn.Module):  # seed 004: conv1/conv2 encoder, fc + two transposed convs decoder
    def __init__(self, latent=2):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.conv2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.fc_mu = nn.Linear(128 * 7 * 7, latent)
        self.fc_logvar = nn.Linear(128 * 7 * 7, latent)
        self.fc = nn.Linear(latent, 128 * 7 * 7)
        self.dconv2 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.dconv1 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        y = self.fc(z).view(-1, 128, 7, 7)
        return torch.sigmoid(self.dconv1(F.relu(self.dconv2(y)))), mu, logvar


class TwoLayerAE(nn.Module):  # seed 002: z = relu(Vx + b), x̂ = Wz + a
    def __init__(self, h=32):
        super().__init__()
        self.enc = nn.Linear(784, h)
        self.dec = nn.Linear(h, 784)

    def forward(self, x):
        x = x.view(-1, 784)
        return self.dec(F.relu(self.enc(x))), None, None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def kl(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def step_fn(name, model, opt):
    def step(x):
        opt.zero_grad()
        y, mu, logvar = model(x)
        if name == "mlp-vae":
            loss = F.binary_cross_entropy(y, x.view(-1, 784), reduction="sum") + kl(mu, logvar)
        elif name == "conv-vae":
            loss = F.mse_loss(y, x, reduction="sum") + kl(mu, logvar)
        else:
            loss = ((y - x.view(-1, 784)) ** 2).sum(1).mean()
        loss.backward()
        if name == "conv-vae":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return loss

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=["mlp-vae", "conv-vae", "ae"])
    ap.add_argument("--mnist-dir", required=True)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-seconds", type=float, default=3.0, help="time whole epochs until at least this long")
    ap.add_argument("--warmup-steps", type=int, default=0, help="warm up this many steps, then time steps, not epochs")
    ap.add_argument("--device", default="cpu", help="cpu (the bench's default) or cuda (the device-machine check)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data = read_idx_images(os.path.join(a.mnist_dir, "train-images-idx3-ubyte"), a.images).to(a.device)
    model = {"mlp-vae": MLPVAE, "conv-vae": ConvVAE, "ae": TwoLayerAE}[a.model]().to(a.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = step_fn(a.model, model, opt)
    n = data.shape[0] - data.shape[0] % a.batch  # drop_last, as the seeds do

    def epoch():
        perm = torch.randperm(data.shape[0], device=data.device)
        losses = []
        for i in range(0, n, a.batch):
            losses.append(step(data[perm[i : i + a.batch]]))
        return float(torch.stack(losses).mean())

    if a.warmup_steps > 0:
        return by_steps(a, data, n, step, model)
    epoch()  # warm-up (epoch() ends with a readback, which waits for the device)
    t0 = time.perf_counter()
    epochs = 0
    while True:
        loss = epoch()
        epochs += 1
        secs = time.perf_counter() - t0
        if secs >= a.min_seconds:
            break
    print(
        json.dumps(
            {
                "model": a.model,
                "samples_per_sec": n * epochs / secs,
                "seconds": secs,
                "epochs": epochs,
                "images": n,
                "final_loss": loss,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "device": torch.cuda.get_device_name() if data.device.type == "cuda" else "cpu",
            }
        )
    )


def by_steps(a, data, n, step, model):
    def batches():
        while True:
            perm = torch.randperm(data.shape[0], device=data.device)
            for i in range(0, n, a.batch):
                yield data[perm[i : i + a.batch]]

    it = batches()
    for _ in range(a.warmup_steps):
        step(next(it))
    losses = []
    steps = 0
    t0 = time.perf_counter()
    while True:
        losses.append(step(next(it)))
        steps += 1
        sync(data.device)  # on a GPU, each step is timed to its end (as wgrad's steps are)
        secs = time.perf_counter() - t0
        if secs >= a.min_seconds:
            break
    loss = float(torch.stack(losses).mean())  # the losses are already computed; this only reads them
    print(
        json.dumps(
            {
                "model": a.model,
                "samples_per_sec": steps * a.batch / secs,
                "seconds": secs,
                "steps": steps,
                "final_loss": loss,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "device": torch.cuda.get_device_name() if data.device.type == "cuda" else "cpu",
            }
        )
    )


if __name__ == "__main__":
    main()
