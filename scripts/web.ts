// `npm run web [-- --port 8080]`: builds the browser bundle of examples/web and serves the page on
// http://127.0.0.1:PORT/ (loopback only) until Ctrl-C. Open it in a browser with WebGPU (see the README,
// "In the browser", for Chromium's flags on a machine without a GPU).
import { parseArgs } from 'node:util';
import { buildWeb } from './web-build.js';
import { startWebServer } from './web-server.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`npm run web: --port must be an integer in 0..65535, got '${values.port}'`);
  process.exit(2);
}
const b = await buildWeb();
console.log(
  `[web] bundle ${b.bytes.toLocaleString('en-US')} bytes (${b.gzipBytes.toLocaleString('en-US')} gzipped)`,
);
const s = await startWebServer({ port });
console.log(`[web] serving examples/web on ${s.url} (Ctrl-C to stop)`);
