#!/usr/bin/env python3
"""PyTorch side of bench/matmul.ts and bench/conv.ts: times torch.mm on M×K×N shapes, or the seed conv layers
(forward and forward + backward), with the same timing rule as the Node side (calibrate to ≥ --target
seconds per measurement, median of --reps). Prints one JSON object: {"torch", "threads", "isa", "results": [...]},
where "isa" says which kernels this process really uses: ATen's CPU capability, the OpenBLAS core
(OPENBLAS_CORETYPE overrides it) and oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA), so that an AVX2 emulation is visible,
and OpenMP's wait policy (OMP_WAIT_POLICY; PASSIVE is part of the benches' "tuned" run).

  /usr/bin/python3 bench/torch_kernels.py matmul --shapes 128x784x400,1024x1024x1024
  /usr/bin/python3 bench/torch_kernels.py conv --batch 128
"""
import argparse
import ctypes
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

DEVICE = "cpu"


def measure(fn, target, reps):
    if DEVICE == "cuda":  # time each batch of calls to its end on the GPU
        inner = fn

        def fn():
            inner()
            torch.cuda.synchronize()

    fn()  # warm-up
    iters = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        t = time.perf_counter() - t0
        if t >= target * 0.4 or iters >= 100000:
            break
        iters *= 2
    iters = max(1, int(iters * target / max(t, 1e-9)))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        samples.append((time.perf_counter() - t0) * 1000 / iters)
    return statistics.median(samples)


# (name, transpose, cin, cout, size, k, s, p): the four layers of the seed conv VAE
LAYERS = [
    ("Conv2d(1,64,4,2,1) 28×28", False, 1, 64, 28, 4, 2, 1),
    ("Conv2d(64,128,4,2,1) 14×14", False, 64, 128, 14, 4, 2, 1),
    ("ConvTranspose2d(128,64,4,2,1) 7×7", True, 128, 64, 7, 4, 2, 1),
    ("ConvTranspose2d(64,1,4,2,1) 14×14", True, 64, 1, 14, 4, 2, 1),
]


def isa():
    """The ISA this process's kernels use (see the module docstring)."""
    cap = next((l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l), "?")
    torch.mm(torch.rand(4, 4), torch.rand(4, 4))  # loads the BLAS
    core = "not OpenBLAS"
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libopenblas" in l.lower()})
    if libs:
        try:
            f = ctypes.CDLL(libs[0]).openblas_get_corename
            f.restype = ctypes.c_char_p
            core = f().decode()
        except (OSError, AttributeError):
            core = "OpenBLAS (core unknown)"
    return {
        "aten": cap,
        "openblas_core": core,
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["matmul", "conv"])
    ap.add_argument("--shapes", default="128x784x400")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", type=float, default=0.5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu (the benches' default) or cuda (the device-machine check)")
    a = ap.parse_args()
    global DEVICE
    DEVICE = a.device
    dev = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    results = []
    if a.what == "matmul":
        for spec in a.shapes.split(","):
            m, k, n = (int(v) for v in spec.split("x"))
            x, y = torch.rand(m, k, device=dev) * 2 - 1, torch.rand(k, n, device=dev) * 2 - 1
            results.append({"shape": spec, "ms": measure(lambda: torch.mm(x, y), a.target, a.reps)})
    else:
        for name, tr, cin, cout, size, k, s, p in LAYERS:
            x = (torch.rand(a.batch, cin, size, size, device=dev) * 2 - 1).requires_grad_()
            w = torch.rand(cin, cout, k, k, device=dev) if tr else torch.rand(cout, cin, k, k, device=dev)
            w.requires_grad_()
            b = torch.rand(cout, device=dev).requires_grad_()
            op = (lambda: F.conv_transpose2d(x, w, b, s, p)) if tr else (lambda: F.conv2d(x, w, b, s, p))
            gy = torch.rand_like(op().detach()) * 2 - 1

            def fwd():
                with torch.no_grad():
                    op()

            def fwd_bwd():
                x.grad = w.grad = b.grad = None
                op().backward(gy)

            results.append(
                {"layer": name, "fwd_ms": measure(fwd, a.target, a.reps), "fwd_bwd_ms": measure(fwd_bwd, a.target, a.reps)}
            )
    where = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
    print(json.dumps({"torch": torch.__version__, "device": where, "threads": torch.get_num_threads(), "isa": isa(), "results": results}))


if __name__ == "__main__":
    main()
