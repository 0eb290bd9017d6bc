#!/usr/bin/env bash
# Checks that `npm ci` accepts package-lock.json with npm 10 as well as the machine's npm (setup.sh runs the
# machine's own `npm ci`): installs the workspace's package.json files and the lock file into a temporary
# folder with npm 10 (fetched by npx), install scripts off. Usage: bash scripts/check-lock.sh [npm-version...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
versions=("${@:-10}")
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp package.json package-lock.json "$tmp/"
for ws in packages/*/; do
  mkdir -p "$tmp/$ws"
  cp "$ws/package.json" "$tmp/$ws"
done
for v in "${versions[@]}"; do
  rm -rf "$tmp/node_modules"
  echo "[check-lock] npm@$v ci (in $tmp)"
  if ! out="$(cd "$tmp" && npx -y "npm@$v" ci --ignore-scripts --no-audit --no-fund 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "[check-lock] npm@$v ci failed: package-lock.json is not usable with npm $v" >&2
    exit 1
  fi
  echo "[check-lock] npm@$v: $(tail -n 1 <<<"$out")"
done
