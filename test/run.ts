// Test runner: loads every test/**/*.test.ts into one process (one WebGPU device, shared pipelines), runs the
// uvu suites file by file, fails a file that leaves GPU buffers or tensors behind, and ends with the
// plain summary line "N passed, N failed".
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { emptyCache, memory, sync } from '@wgrad/tensor';

const root = new URL('.', import.meta.url).pathname;
const filter = process.argv.slice(2);

function find(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return name === 'fixtures' ? [] : find(p);
      return name.endsWith('.test.ts') ? [p] : [];
    });
}

const files = find(root).filter((f) => !filter.length || filter.some((pat) => f.includes(pat)));
type Runner = () => Promise<[string | true, number, number, number]>;
const g = globalThis as unknown as { UVU_DEFER: number; UVU_INDEX: number; UVU_QUEUE: (string | Runner)[][] };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];

const started = Date.now();
let passed = 0;
let failed = 0;
let skipped = 0;
for (const [idx, file] of files.entries()) {
  g.UVU_INDEX = idx;
  g.UVU_QUEUE.push([relative(root, file)]);
  await import(pathToFileURL(file).href);
}
for (const group of g.UVU_QUEUE) {
  const name = group.shift() as string;
  process.stdout.write(`${name}\n`);
  await sync();
  const before = memory();
  const t0 = Date.now();
  for (const run of group as Runner[]) {
    const [errs, ran, skip, total] = await run();
    passed += ran;
    skipped += skip;
    failed += total - ran - skip;
    if (errs !== true && errs.length) process.stdout.write(`\n${errs}\n`);
  }
  await sync();
  const after = memory();
  if (after.buffersInUse !== before.buffersInUse || after.liveTensors !== before.liveTensors) {
    failed++;
    process.stdout.write(
      `\n  LEAK in ${name}: live tensors ${before.liveTensors} -> ${after.liveTensors}, buffers in use ${before.buffersInUse} -> ${after.buffersInUse}\n`,
    );
  }
  process.stdout.write(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
}
emptyCache();
console.log(`\n  Files: ${files.length}  Duration: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
