// CPU time spent by the process's worker threads (everything but the main JS thread, i.e. mostly lavapipe's
// compute pool), from /proc/self/task/*/schedstat (ns). On a shared, oversubscribed machine the wall time of
// a kernel swings with other processes' load, while the CPU time its worker threads need is far steadier:
// benches report it next to the wall time (Linux only; null elsewhere).
import { readdirSync, readFileSync } from 'node:fs';

export function workerCpuNs(): number | null {
  try {
    let ns = 0;
    for (const t of readdirSync('/proc/self/task')) {
      if (Number(t) === process.pid) continue; // the main thread spins while waiting on the GPU
      ns += Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    }
    return ns;
  } catch {
    return null;
  }
}
