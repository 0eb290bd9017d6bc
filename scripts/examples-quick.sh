#!/usr/bin/env bash
# Runs every example in --quick mode (what CI does); each writes its report under runs/quick/<name>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for name in topo ae-zeros digits-ae cvae-mnist conv-vae mlp-vae; do
  if [[ ! -f "examples/$name.ts" ]]; then
    echo "[examples] missing examples/$name.ts" >&2
    exit 1
  fi
  start=$(date +%s)
  echo "[examples] ===== $name --quick ====="
  node --conditions=source --import tsx "examples/$name.ts" --quick --out "runs/quick/$name"
  echo "[examples] ----- $name ok in $(($(date +%s) - start))s"
done
