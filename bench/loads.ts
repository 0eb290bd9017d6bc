// What one storage-buffer load costs a kernel, by the value's type and by whether its address is the same in
// every lane: the numbers behind the GEMM bodies' "multiply-adds per loaded value" arithmetic.
//
//   npm run bench:loads [-- --quick] [--json out.json]
//
// Each variant is one dispatch of G workgroups × 8 invocations, each looping K times over one load from an
// `array<T>` and an add into a vec4 accumulator; `none` is the same loop without a load (the loop's own cost).
// Rows: GPU wall time of the dispatch (submit → onSubmittedWorkDone, median of the rounds; the variants
// alternate within each round), then per 8-lane iteration and, net of `none`, per loaded f32 value.
// "lane": address k·8 + lane (each lane its own value); "uniform": address k·8 + 64·workgroup (the same in
// every lane of a workgroup, which a GPU serves with one broadcast load).
import { sync } from '@wgrad/tensor';
import { currentDevice } from '../packages/tensor/src/gpu.js';
import { benchMeta, fmt, formatHeader, markdownTable, median, parseBenchArgs, writeJson } from './common.js';

const opts = parseBenchArgs('usage: npm run bench:loads -- [options]', {});
await sync();
const d = currentDevice()!;
const meta = benchMeta('loads', opts);
meta.timing = `one dispatch per variant and round, the variants alternating; median of ${opts.quick ? 3 : 9} rounds`;
console.log(formatHeader('Storage-buffer load cost per lane', meta));

const K = 4096;
const G = 512;
const ROUNDS = opts.quick ? 3 : 9;

interface Variant {
  name: string;
  type: 'f32' | 'vec4<f32>' | 'mat4x4<f32>';
  /** The loaded value's f32 count (0: no load). */
  floats: number;
  index: string;
  /** Where the value lives (default storage): a uniform buffer (64 KiB) or an rgba32float texture (256 × 64). */
  space?: 'uniform' | 'texture';
  /** The accumulated vec4, from the loaded value `v` (and the loop counter k). */
  use: string;
}
// Index masks keep every address inside the 1 MiB buffer.
const variants: Variant[] = [
  { name: 'none', type: 'vec4<f32>', floats: 0, index: '', use: 'vec4<f32>(f32(k))' },
  { name: 'f32, lane', type: 'f32', floats: 1, index: '(k * 8u + l) & 65535u', use: 'vec4<f32>(v)' },
  { name: 'f32, uniform', type: 'f32', floats: 1, index: '(k * 8u + base) & 65535u', use: 'vec4<f32>(v)' },
  { name: 'vec4, lane', type: 'vec4<f32>', floats: 4, index: '(k * 8u + l) & 16383u', use: 'v' },
  { name: 'vec4, uniform', type: 'vec4<f32>', floats: 4, index: '(k * 8u + base) & 16383u', use: 'v' },
  {
    name: 'vec4, lane, uniform buffer',
    type: 'vec4<f32>',
    floats: 4,
    index: '(k * 8u + l) & 4095u',
    use: 'v',
    space: 'uniform',
  },
  {
    name: 'vec4, lane, texture',
    type: 'vec4<f32>',
    floats: 4,
    index: '(k * 8u + l) & 16383u',
    use: 'v',
    space: 'texture',
  },
  {
    name: 'mat4x4, lane',
    type: 'mat4x4<f32>',
    floats: 16,
    index: '(k * 8u + l) & 4095u',
    use: 'v[0] + v[1] + v[2] + v[3]',
  },
];

const decl = (v: Variant) =>
  v.space === 'uniform'
    ? `@group(0) @binding(0) var<uniform> a: array<vec4<f32>, 4096>;`
    : v.space === 'texture'
      ? `@group(0) @binding(0) var a: texture_2d<f32>;`
      : `@group(0) @binding(0) var<storage, read> a: array<${v.type}>;`;
const load = (v: Variant, i: string) =>
  v.space === 'texture' ? `textureLoad(a, vec2<u32>((${i}) & 255u, (${i}) >> 8u), 0)` : `a[${i}]`;
const source = (v: Variant) => `
${decl(v)}
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(8)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>) {
  var s = vec4<f32>(0.0);
  let base = w.x * 64u;
  let first = ${load(v, '0u')}; // keeps binding 0 in the 'auto' layout of the load-free variant
  for (var k = 0u; k < ${K}u; k++) {
    ${v.floats ? `let v = ${load(v, v.index)};` : ''}
    s += ${v.use};
  }
  o[w.x * 8u + l] = s.x + s.y + s.z + s.w + ${{ f32: 'first', 'vec4<f32>': 'first.x', 'mat4x4<f32>': 'first[0].x' }[v.type]};
}`;

const STORAGE = 0x80;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const a = d.createBuffer({ size: 1 << 20, usage: STORAGE | COPY_DST });
const ua = d.createBuffer({ size: 1 << 16, usage: UNIFORM | COPY_DST });
const ta = d.createTexture({ size: [256, 64], format: 'rgba32float', usage: 0x4 /* TEXTURE_BINDING */ });
const o = d.createBuffer({ size: G * 8 * 4, usage: STORAGE });
const runs = variants.map((v) => {
  const pipeline = d.createComputePipeline({
    layout: 'auto',
    compute: { module: d.createShaderModule({ code: source(v) }), entryPoint: 'main' },
  });
  const group = d.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      {
        binding: 0,
        resource: v.space === 'texture' ? ta.createView() : { buffer: v.space === 'uniform' ? ua : a },
      },
      { binding: 1, resource: { buffer: o } },
    ],
  });
  return async () => {
    const e = d.createCommandEncoder();
    const pass = e.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(G);
    pass.end();
    const t0 = performance.now();
    d.queue.submit([e.finish()]);
    await d.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
});
for (const run of runs) await run(); // compile
const ms = variants.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < runs.length; i++) ms[i]!.push(await runs[i]!());

const iterations = (G * 8 * K) / 8; // 8-lane iterations
const perIter = ms.map((m) => (median(m) * 1e6) / iterations);
const rows = variants.map((v, i) => {
  const net = perIter[i]! - perIter[0]!;
  return [
    v.name,
    fmt(median(ms[i]!)),
    fmt(perIter[i]!),
    v.floats ? fmt(net) : '–',
    v.floats ? fmt(net / v.floats) : '–',
  ];
});
console.log(`\n${G} workgroups × 8 invocations × ${K} iterations; median of ${ROUNDS} rounds\n`);
console.log(
  markdownTable(
    ['variant', 'ms', 'ns / 8-lane iteration', 'ns per load (net)', 'ns per f32 value (net)'],
    rows,
  ),
);
if (opts.json) writeJson(opts.json, { meta, rows });
process.exit(0);
