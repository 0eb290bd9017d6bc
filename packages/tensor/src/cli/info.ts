// `npm run info`: which WebGPU adapter wgrad got, its important limits, and a tiny end-to-end self-check.
//
//   npm run info [-- --json]
//
// WGRAD_BACKEND=vulkan|opengl|auto picks the backend (see device-node.ts). Exits 0 when the device was
// acquired and the self-check passed, 1 otherwise (the reason is printed, or put in the JSON as `error`).

const LIMIT_NAMES = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
  'minUniformBufferOffsetAlignment',
] as const;

type LimitName = (typeof LIMIT_NAMES)[number];

interface Info {
  ok: boolean;
  requestedBackend: string;
  backend: string | null;
  adapter: string | null;
  isFallback: boolean | null;
  featureLevel: string | null;
  limits: Partial<Record<LimitName, number>>;
  selfCheck: { ok: boolean; expected: number; got: number | null; ms: number } | null;
  /** verifyGemm: each GEMM body / B path, problems run, max error, failures; then the body in use. */
  gemm: {
    checks: { body: string; texture: string; cases: number; maxErr: number; failed: string[] }[];
    body: string;
    ms: number;
  } | null;
  error: string | null;
  node: string;
}

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[u]}`;
}

const BYTE_LIMITS = new Set<LimitName>([
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'minUniformBufferOffsetAlignment',
]);

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function gather(): Promise<Info> {
  const info: Info = {
    ok: false,
    requestedBackend: (process.env.WGRAD_BACKEND ?? 'auto').toLowerCase(),
    backend: null,
    adapter: null,
    isFallback: null,
    featureLevel: null,
    limits: {},
    selfCheck: null,
    gemm: null,
    error: null,
    node: process.version,
  };
  // Dynamic import: the package acquires the device when it loads, and a failure there must be reported,
  // not crash the process with an unhandled top-level rejection.
  let T: typeof import('@wgrad/tensor');
  try {
    T = await import('@wgrad/tensor');
  } catch (e) {
    info.error = errorText(e);
    return info;
  }
  try {
    const a = T.adapterSummary();
    info.backend = a.backend;
    info.adapter = a.description;
    info.isFallback = a.isFallback;
    info.featureLevel = a.featureLevel;
    const l = T.limits();
    for (const name of LIMIT_NAMES) info.limits[name] = l[name];
  } catch (e) {
    info.error = errorText(e);
    return info;
  }
  const expected = 12;
  const t0 = performance.now();
  try {
    const got = await T.scope(async () => T.tensor([1, 2, 3]).mul(2).sum().item());
    info.selfCheck = { ok: got === expected, expected, got, ms: performance.now() - t0 };
    if (got !== expected) info.error = `self-check: tensor([1,2,3]).mul(2).sum() gave ${got}, expected 12`;
  } catch (e) {
    info.selfCheck = { ok: false, expected, got: null, ms: performance.now() - t0 };
    info.error = `self-check failed: ${errorText(e)}`;
  }
  if (info.error === null) {
    const t1 = performance.now();
    try {
      const checks = await T.verifyGemm();
      info.gemm = { checks, body: T.gemmBody(), ms: performance.now() - t1 };
    } catch (e) {
      info.error = errorText(e);
    }
  }
  info.ok = info.error === null;
  return info;
}

function printText(info: Info): void {
  const rows: [string, string][] = [
    ['backend', `${info.backend ?? '-'} (WGRAD_BACKEND=${info.requestedBackend})`],
    ['adapter', info.adapter ?? '-'],
    ['fallback adapter', info.isFallback === null ? '-' : String(info.isFallback)],
    ['feature level', info.featureLevel ?? '-'],
  ];
  for (const name of LIMIT_NAMES) {
    const v = info.limits[name];
    if (v === undefined) continue;
    rows.push([name, BYTE_LIMITS.has(name) && v >= 1024 ? `${v} (${fmtBytes(v)})` : String(v)]);
  }
  if (info.selfCheck)
    rows.push([
      'self-check',
      info.selfCheck.ok
        ? `OK (tensor([1,2,3]).mul(2).sum() = ${info.selfCheck.got}, ${info.selfCheck.ms.toFixed(0)} ms)`
        : 'FAILED',
    ]);
  if (info.gemm) {
    for (const c of info.gemm.checks)
      rows.push([
        `GEMM ${c.body}${c.body === 'subgroup' ? ` (texture ${c.texture})` : ''}`,
        c.failed.length
          ? `FAILED, switched off: ${c.failed.join('; ')}`
          : `OK (${c.cases} problems vs float64, max error ${c.maxErr.toExponential(1)})`,
      ]);
    rows.push(['GEMM body in use', `${info.gemm.body} (checks took ${info.gemm.ms.toFixed(0)} ms)`]);
  }
  rows.push(['node', info.node]);
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log('wgrad device info');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  if (info.error) console.log(`\nERROR: ${info.error}`);
  else console.log('\nOK');
}

const json = process.argv.slice(2).includes('--json');
const unknown = process.argv.slice(2).filter((a) => a !== '--json');
if (unknown.length) {
  console.error(`info: unknown argument(s) ${unknown.join(' ')}\nusage: npm run info [-- --json]`);
  process.exit(2);
}
const info = await gather();
if (json) console.log(JSON.stringify(info, null, 2));
else printText(info);
process.exit(info.ok ? 0 : 1);
