// Convolution throughput on the seed layers (MNIST autoencoder/VAE, batch 128): wgrad's `conv2d` /
// `convTranspose2d` (im2col/col2im around the shared GEMM; forward, and forward + backward through autograd)
// against naive direct WGSL kernels (one invocation per output element, no im2col, no blocking) on the same
// device in the same run, with a cross-check of every output and gradient, and against PyTorch on the CPU
// when Debian's python3-torch is installed.
//
//   node --conditions=source --import tsx bench/conv.ts [--quick] [--batch 128] [--isa native|avx2] [--naive on|off]
//                                                       [--json out.json]
//
// The input gradient (conv2d's dx, convTranspose2d's forward) is timed on both of its paths in the same run
// where the layer takes the implicit one (col2im fused into the GEMM): "fwd+bwd col2im path" is the old
// im2col/col2im form. PyTorch runs twice, as installed (OpenBLAS picks its core, OpenMP's default wait policy)
// and tuned (OPENBLAS_CORETYPE=SkylakeX, OMP_WAIT_POLICY=PASSIVE: see torchEnv in common.ts), each process
// printing the kernels and wait policy it really uses.
// `--isa avx2` emulates an AVX2-only machine on an AVX-512 one (labelled as emulated): lavapipe's LLVM is
// given the CPU caps without AVX-512 (GALLIUM_OVERRIDE_CPU_CAPS=avx: avx/avx2/fma stay on, avx512* off; the
// bench re-runs itself with it, since the device is created at import), and PyTorch gets
// ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2 and OPENBLAS_CORETYPE=Haswell (both runs; tuned adds
// OMP_WAIT_POLICY=PASSIVE).
//
// GFLOP/s counts 2 FLOP per multiply-add of the dense convolution (padding taps included, as PyTorch's
// profiler does): forward 2·B·Cout·OH·OW·Cin·kH·kW (conv2d geometry), forward + backward 3× that (dx and dw
// each cost one forward). "ours" fwd+bwd also includes the bias gradient (a reduction); the naive side does not.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conv2d, convTranspose2d, rand, scope, sync, Tensor } from '@wgrad/tensor';
import { dispatch, kernel } from '../packages/tensor/src/gpu.js';
import { setConvInputGradMode } from '../packages/tensor/src/ops/conv.js';
import {
  benchMeta,
  envWords,
  findTorchPython,
  fmt,
  formatHeader,
  markdownTable,
  maxRelErr,
  measureAll,
  parseBenchArgs,
  runPythonJson,
  spread,
  type Timing,
  torchBlas,
  torchEnv,
  writeJson,
} from './common.js';
import { workerCpuNs } from './cputime.js';

interface Layer {
  name: string;
  transpose: boolean;
  cin: number; // the layer's in/out channels as constructed (ConvTranspose2d(cin, cout, …) too)
  cout: number;
  size: number; // input H = W
  k: number;
  s: number;
  p: number;
}

const LAYERS: Layer[] = [
  { name: 'Conv2d(1,64,4,2,1) 28×28', transpose: false, cin: 1, cout: 64, size: 28, k: 4, s: 2, p: 1 },
  { name: 'Conv2d(64,128,4,2,1) 14×14', transpose: false, cin: 64, cout: 128, size: 14, k: 4, s: 2, p: 1 },
  {
    name: 'ConvTranspose2d(128,64,4,2,1) 7×7',
    transpose: true,
    cin: 128,
    cout: 64,
    size: 7,
    k: 4,
    s: 2,
    p: 1,
  },
  {
    name: 'ConvTranspose2d(64,1,4,2,1) 14×14',
    transpose: true,
    cin: 64,
    cout: 1,
    size: 14,
    k: 4,
    s: 2,
    p: 1,
  },
];

// ---------------------------------------------------------------------------------------------------------
// Naive kernels, all in conv2d geometry: x (B, Ci, H, W), w (Co, Ci, k, k), y (B, Co, OH, OW).
//   fwd: y  = conv2d(x, w) (+ bias)            one invocation per y element
//   dx:  gx = conv2d's dL/dx(gy, w) (+ bias)    one invocation per gx element (= convTranspose2d forward)
//   dw:  gw = conv2d's dL/dw(gy, x)             one invocation per gw element
const WG = 64;
const HEAD = `
struct U { B: u32, Ci: u32, H: u32, W: u32, Co: u32, OH: u32, OW: u32, k: u32, s: u32, p: u32, hasBias: u32, total: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= u.total) { return; }`;
const NAIVE = {
  // src = x, wt = w, dst = y
  fwd: `${HEAD}
  let ow = i % u.OW; let oh = (i / u.OW) % u.OH; let co = (i / (u.OW * u.OH)) % u.Co; let b = i / (u.OW * u.OH * u.Co);
  var acc = select(0.0, bias[co], u.hasBias != 0u);
  for (var ci = 0u; ci < u.Ci; ci++) {
    for (var kh = 0u; kh < u.k; kh++) {
      let ih = i32(oh * u.s + kh) - i32(u.p);
      if (ih < 0 || ih >= i32(u.H)) { continue; }
      for (var kw = 0u; kw < u.k; kw++) {
        let iw = i32(ow * u.s + kw) - i32(u.p);
        if (iw < 0 || iw >= i32(u.W)) { continue; }
        acc += src[((b * u.Ci + ci) * u.H + u32(ih)) * u.W + u32(iw)] * wt[((co * u.Ci + ci) * u.k + kh) * u.k + kw];
      }
    }
  }
  dst[i] = acc;
}`,
  // src = gy, wt = w, dst = gx
  dx: `${HEAD}
  let iw = i % u.W; let ih = (i / u.W) % u.H; let ci = (i / (u.W * u.H)) % u.Ci; let b = i / (u.W * u.H * u.Ci);
  var acc = select(0.0, bias[ci], u.hasBias != 0u);
  for (var co = 0u; co < u.Co; co++) {
    for (var kh = 0u; kh < u.k; kh++) {
      let th = i32(ih + u.p) - i32(kh);
      if (th < 0 || th % i32(u.s) != 0 || th / i32(u.s) >= i32(u.OH)) { continue; }
      for (var kw = 0u; kw < u.k; kw++) {
        let tw = i32(iw + u.p) - i32(kw);
        if (tw < 0 || tw % i32(u.s) != 0 || tw / i32(u.s) >= i32(u.OW)) { continue; }
        acc += src[((b * u.Co + co) * u.OH + u32(th) / u.s) * u.OW + u32(tw) / u.s] * wt[((co * u.Ci + ci) * u.k + kh) * u.k + kw];
      }
    }
  }
  dst[i] = acc;
}`,
  // src = gy, wt = x, dst = gw
  dw: `${HEAD}
  let kw = i % u.k; let kh = (i / u.k) % u.k; let ci = (i / (u.k * u.k)) % u.Ci; let co = i / (u.k * u.k * u.Ci);
  var acc = select(0.0, bias[0], u.hasBias != 0u);  // (never set: keeps the binding layout uniform)
  for (var b = 0u; b < u.B; b++) {
    for (var oh = 0u; oh < u.OH; oh++) {
      let ih = i32(oh * u.s + kh) - i32(u.p);
      if (ih < 0 || ih >= i32(u.H)) { continue; }
      for (var ow = 0u; ow < u.OW; ow++) {
        let iw = i32(ow * u.s + kw) - i32(u.p);
        if (iw < 0 || iw >= i32(u.W)) { continue; }
        acc += src[((b * u.Co + co) * u.OH + oh) * u.OW + ow] * wt[((b * u.Ci + ci) * u.H + u32(ih)) * u.W + u32(iw)];
      }
    }
  }
  dst[i] = acc;
}`,
};

interface Geo {
  B: number;
  Ci: number;
  H: number;
  Co: number;
  OH: number;
  k: number;
  s: number;
  p: number;
}

function naive(which: keyof typeof NAIVE, q: Geo, src: Tensor, wt: Tensor, bias: Tensor | null, dst: Tensor) {
  const total = dst.size;
  const groups = Math.ceil(total / WG);
  const gx = Math.min(groups, 65535);
  dispatch(
    kernel(`bench_naive_conv_${which}`, NAIVE[which]),
    [q.B, q.Ci, q.H, q.H, q.Co, q.OH, q.OH, q.k, q.s, q.p, bias ? 1 : 0, total],
    [src.buffer(), wt.buffer(), (bias ?? wt).buffer(), dst.buffer()],
    [gx, Math.ceil(groups / gx)],
  );
}

// ---------------------------------------------------------------------------------------------------------

interface Result {
  layer: string;
  gflopFwd: number;
  /** naive: null with --naive off (the naive kernels then only cross-check the results). */
  fwd: { ours: Timing; naive: Timing | null };
  fwdBwd: { ours: Timing; naive: Timing | null; col2im: Timing | null };
  cpuMs: Record<string, number>;
  maxRelErr: { y: number; gx: number; gw: number };
}

async function benchLayer(
  L: Layer,
  B: number,
  opts: { targetSeconds: number; reps: number; timeNaive: boolean },
): Promise<Result> {
  return scope(async () => {
    const out = (
      L.transpose ? (L.size - 1) * L.s - 2 * L.p + L.k : Math.floor((L.size + 2 * L.p - L.k) / L.s) + 1
    )!;
    // conv2d geometry (a transposed layer runs it backwards).
    const q: Geo = L.transpose
      ? { B, Ci: L.cout, H: out, Co: L.cin, OH: L.size, k: L.k, s: L.s, p: L.p }
      : { B, Ci: L.cin, H: L.size, Co: L.cout, OH: out, k: L.k, s: L.s, p: L.p };
    const flop = 2 * q.B * q.Co * q.OH * q.OH * q.Ci * q.k * q.k;
    const x = rand([B, L.cin, L.size, L.size], { low: -1, high: 1 }).requiresGrad_();
    const w = (
      L.transpose ? rand([L.cin, L.cout, L.k, L.k]) : rand([L.cout, L.cin, L.k, L.k])
    ).requiresGrad_();
    const b = rand([L.cout]).requiresGrad_();
    const gy = rand([B, L.cout, out, out], { low: -1, high: 1 });
    const opt = { stride: L.s, padding: L.p };
    const ours = () => (L.transpose ? convTranspose2d(x, w, b, opt) : conv2d(x, w, b, opt));
    // Whether this layer's input gradient takes the implicit path (then the col2im path is timed too).
    const implicit = (L.transpose ? L.cout : L.cin) >= 8;
    const clearGrads = () => {
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
    };
    const ny = new Tensor([B, L.cout, out, out], 'float32');
    const ngx = new Tensor([...x.shape], 'float32');
    const ngw = new Tensor([...w.shape], 'float32');
    // conv2d: y = fwd(x, w); dx = dx(gy, w); dw = dw(gy, x). convTranspose2d: y = dx(x, w); dx = fwd(gy, w); dw = dw(x, gy).
    const naiveFwd = () => (L.transpose ? naive('dx', q, x, w, b, ny) : naive('fwd', q, x, w, b, ny));
    const naiveBwd = () => {
      if (L.transpose) {
        naive('fwd', q, gy, w, null, ngx);
        naive('dw', q, x, gy, null, ngw);
      } else {
        naive('dx', q, gy, w, null, ngx);
        naive('dw', q, gy, x, null, ngw);
      }
    };

    // Cross-check (also compiles every pipeline).
    const y0 = ours();
    y0.backward(gy);
    naiveFwd();
    naiveBwd();
    const arrs = await Promise.all([y0, ny, x.grad!, ngx, w.grad!, ngw].map((t) => t.toArray()));
    const err = {
      y: maxRelErr(arrs[0]!, arrs[1]!),
      gx: maxRelErr(arrs[2]!, arrs[3]!),
      gw: maxRelErr(arrs[4]!, arrs[5]!),
    };
    y0.dispose();
    clearGrads();

    const runs: Record<string, (n: number) => void> = {
      oursFwd: (n: number) => {
        for (let i = 0; i < n; i++) ours().dispose();
      },
      oursFwdBwd: (n: number) => {
        for (let i = 0; i < n; i++) {
          const y = ours();
          y.backward(gy);
          y.dispose();
          clearGrads();
        }
      },
      ...(implicit
        ? {
            oursCol2im: (n: number) => {
              const old = setConvInputGradMode('col2im');
              try {
                for (let i = 0; i < n; i++) {
                  const y = ours();
                  y.backward(gy);
                  y.dispose();
                  clearGrads();
                }
              } finally {
                setConvInputGradMode(old);
              }
            },
          }
        : {}),
      ...(opts.timeNaive
        ? {
            naiveFwd: (n: number) => {
              for (let i = 0; i < n; i++) naiveFwd();
            },
            naiveFwdBwd: (n: number) => {
              for (let i = 0; i < n; i++) {
                naiveFwd();
                naiveBwd();
              }
            },
          }
        : {}),
    };
    // Worker-thread CPU time of one iteration of each (a load-independent cross-check of the wall times).
    const cpuMs: Record<string, number> = {};
    for (const [k, run] of Object.entries(runs)) {
      await sync();
      const c0 = workerCpuNs();
      run(1);
      await sync();
      const c1 = workerCpuNs();
      cpuMs[k] = c0 === null || c1 === null ? Number.NaN : (c1 - c0) / 1e6;
    }
    const t = await measureAll(runs, opts);
    return {
      layer: L.name,
      gflopFwd: flop / 1e9,
      fwd: { ours: t.oursFwd!, naive: t.naiveFwd ?? null },
      fwdBwd: { ours: t.oursFwdBwd!, naive: t.naiveFwdBwd ?? null, col2im: t.oursCol2im ?? null },
      cpuMs,
      maxRelErr: err,
    };
  });
}

const opts = parseBenchArgs('usage: bench/conv.ts [options]', {
  batch: { default: '128', help: 'batch size (default 128)' },
  torch: { default: 'auto', help: "'auto' (also time PyTorch when python3-torch is installed) or 'off'" },
  naive: { default: 'on', help: "'on' or 'off' (off: the naive kernels only cross-check, untimed)" },
  isa: {
    default: 'native',
    help: "'native' or 'avx2' (AVX2-only machine, emulated: see the top of bench/conv.ts)",
  },
});
if (opts.isa !== 'native' && opts.isa !== 'avx2') {
  console.error(`--isa must be 'native' or 'avx2', got '${opts.isa}'`);
  process.exit(2);
}
const LAVAPIPE_AVX2 = { GALLIUM_OVERRIDE_CPU_CAPS: 'avx' };
if (
  opts.isa === 'avx2' &&
  process.env.GALLIUM_OVERRIDE_CPU_CAPS !== LAVAPIPE_AVX2.GALLIUM_OVERRIDE_CPU_CAPS
) {
  // The device was created at import with the native caps: run again with lavapipe restricted.
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, ...LAVAPIPE_AVX2 },
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
const TORCH_AVX2 = { ONEDNN_MAX_CPU_ISA: 'AVX2', ATEN_CPU_CAPABILITY: 'avx2', OPENBLAS_CORETYPE: 'Haswell' };
/** PyTorch runs: as installed (inherited overrides cleared) and tuned (see torchEnv in common.ts). */
const torchIsa = opts.isa === 'avx2' ? TORCH_AVX2 : null;
const torchRuns: { name: string; env: Record<string, string | undefined> }[] = [
  { name: `PyTorch${torchIsa ? ' AVX2 (emulated)' : ''} as installed`, env: torchEnv(false, torchIsa) },
  { name: `PyTorch${torchIsa ? ' AVX2 (emulated)' : ''} tuned`, env: torchEnv(true, torchIsa) },
];
const torchPy = findTorchPython(opts.torch);
const B = Number(opts.batch);
const meta = benchMeta('conv', opts);
console.log(
  formatHeader(
    `conv ms and GFLOP/s, batch ${B}: wgrad (im2col + GEMM) vs naive direct WGSL and PyTorch`,
    meta,
  ),
);
console.log(
  opts.isa === 'avx2'
    ? `- ISA: AVX2 EMULATED on this CPU — lavapipe with ${envWords(LAVAPIPE_AVX2).join(' ')} (LLVM gets no avx512*), PyTorch with ${envWords(TORCH_AVX2).join(' ')}`
    : '- ISA: native (lavapipe and PyTorch use what this CPU has)',
);
console.log(
  torchPy
    ? `- PyTorch: ${torchPy}, 2 threads, BLAS: ${torchBlas(torchPy)} (same layers and timing rule, CPU); runs: ${torchRuns.map((r) => r.name).join(', ')}`
    : '- PyTorch: not run (python3-torch not installed, or --torch off)',
);
console.log('');
if (opts.naive !== 'on' && opts.naive !== 'off') {
  console.error(`--naive must be 'on' or 'off', got '${opts.naive}'`);
  process.exit(2);
}
const results: Result[] = [];
for (const L of LAYERS) {
  process.stderr.write(`  ${L.name} … `);
  const r = await benchLayer(L, B, { ...opts, timeNaive: opts.naive === 'on' });
  process.stderr.write(
    `fwd ours ${fmt(r.fwd.ours.ms)} ms${r.fwd.naive ? `, naive ${fmt(r.fwd.naive.ms)} ms` : ''}\n`,
  );
  results.push(r);
}
type TorchConv = {
  torch: string;
  isa: { aten: string; openblas_core: string; onednn_max_isa: string; omp_wait_policy?: string };
  results: { layer: string; fwd_ms: number; fwd_bwd_ms: number }[];
};
const torchResults = torchRuns.map((run) => {
  const r = torchPy
    ? runPythonJson<TorchConv>(
        torchPy,
        join(dirname(fileURLToPath(import.meta.url)), 'torch_kernels.py'),
        ['conv', '--batch', String(B), '--target', String(opts.targetSeconds), '--reps', String(opts.reps)],
        run.env,
      )
    : null;
  if (typeof r === 'string') console.log(`${run.name} ${r}\n`);
  else if (r)
    console.log(
      `- ${run.name}: ATen ${r.isa.aten}, OpenBLAS core ${r.isa.openblas_core}, oneDNN ISA cap ${r.isa.onednn_max_isa}, OpenMP wait policy ${r.isa.omp_wait_policy ?? '?'}`,
    );
  return { ...run, r: r && typeof r !== 'string' ? r : null };
});
console.log('');
const torchOf = (layer: string, i = 0) => torchResults[i]?.r?.results.find((x) => x.layer === layer);
const gf = (gflop: number, t: Timing | null) => (t ? fmt(gflop / (t.ms * 1e-3)) : '–');
const ms = (t: Timing | null) => (t ? fmt(t.ms) : '–');
const ratio = (naive: Timing | null, ours: Timing) => (naive ? `${(naive.ms / ours.ms).toFixed(2)}×` : '–');
console.log(
  markdownTable(
    [
      'layer',
      'fwd GFLOP',
      'fwd ours ms',
      'GFLOP/s',
      'fwd naive ms',
      'GFLOP/s',
      'ours/naive',
      'fwd+bwd ours ms',
      'GFLOP/s',
      'fwd+bwd col2im path ms',
      'fwd+bwd naive ms',
      'GFLOP/s',
      'ours/naive',
      'PyTorch fwd ms',
      'ours/PyTorch fwd',
      'PyTorch fwd+bwd ms',
      'ours/PyTorch fwd+bwd',
      ...(torchRuns.length > 1 ? ['tuned fwd+bwd ms', 'ours/tuned fwd+bwd'] : []),
      'max rel err y / gx / gw',
      'spread',
    ],
    results.map((r) => [
      r.layer,
      fmt(r.gflopFwd, 3),
      fmt(r.fwd.ours.ms),
      gf(r.gflopFwd, r.fwd.ours),
      ms(r.fwd.naive),
      gf(r.gflopFwd, r.fwd.naive),
      ratio(r.fwd.naive, r.fwd.ours),
      fmt(r.fwdBwd.ours.ms),
      gf(3 * r.gflopFwd, r.fwdBwd.ours),
      r.fwdBwd.col2im ? fmt(r.fwdBwd.col2im.ms) : '–',
      ms(r.fwdBwd.naive),
      gf(3 * r.gflopFwd, r.fwdBwd.naive),
      ratio(r.fwdBwd.naive, r.fwdBwd.ours),
      ...(() => {
        const t = torchOf(r.layer);
        return t
          ? [
              fmt(t.fwd_ms),
              `${(t.fwd_ms / r.fwd.ours.ms).toFixed(2)}×`,
              fmt(t.fwd_bwd_ms),
              `${(t.fwd_bwd_ms / r.fwdBwd.ours.ms).toFixed(2)}×`,
            ]
          : ['–', '–', '–', '–'];
      })(),
      ...(torchRuns.length > 1
        ? (() => {
            const t = torchOf(r.layer, 1);
            return t ? [fmt(t.fwd_bwd_ms), `${(t.fwd_bwd_ms / r.fwdBwd.ours.ms).toFixed(2)}×`] : ['–', '–'];
          })()
        : []),
      `${r.maxRelErr.y.toExponential(1)} / ${r.maxRelErr.gx.toExponential(1)} / ${r.maxRelErr.gw.toExponential(1)}`,
      r.fwd.ours.samples.length > 1
        ? `${Math.round(
            100 *
              Math.max(
                ...[r.fwd.ours, r.fwd.naive, r.fwdBwd.ours, r.fwdBwd.naive, r.fwdBwd.col2im]
                  .filter((x): x is Timing => x !== null)
                  .map(spread),
              ),
          )}%`
        : '–',
    ]),
  ),
);
console.log('');
console.log(
  markdownTable(
    ['layer', 'worker CPU ms: fwd ours', 'fwd naive', 'fwd+bwd ours', 'fwd+bwd naive'],
    results.map((r) => [
      r.layer,
      fmt(r.cpuMs.oursFwd!),
      r.cpuMs.naiveFwd === undefined ? '–' : fmt(r.cpuMs.naiveFwd),
      fmt(r.cpuMs.oursFwdBwd!),
      r.cpuMs.naiveFwdBwd === undefined ? '–' : fmt(r.cpuMs.naiveFwdBwd),
    ]),
  ),
);
console.log('');
console.log(
  'GFLOP/s: 2·MACs of the dense convolution (fwd), 3× that for fwd+bwd. ours/naive, ours/PyTorch: their time / ours (> 1: ours is faster). ' +
    'max rel err: ours vs naive, max|Δ| / max|naive|. ' +
    'worker CPU ms: CPU time of the non-main threads (lavapipe) for one iteration — steadier than wall time on a loaded machine.',
);
const TOL = 1e-4;
const bad = results.filter((r) => !(r.maxRelErr.y < TOL && r.maxRelErr.gx < TOL && r.maxRelErr.gw < TOL));
if (bad.length) console.log(`\nWARNING: results disagree on ${bad.map((r) => r.layer).join(', ')}`);
if (opts.json) {
  writeJson(opts.json, {
    meta: { ...meta, isa: opts.isa },
    results,
    torch: torchResults.map(({ name, env, r }) => ({ name, env, ...r })),
  });
  console.log(`\nwrote ${opts.json}`);
}
process.exit(bad.length ? 1 : 0);
