// Argument parsing shared by the examples: --quick, --out DIR, --epochs N, --seed N and example flags.
import { parseArgs } from 'node:util';

export interface ExampleArgs {
  quick: boolean;
  out: string;
  epochs: number | undefined;
  seed: number;
  values: Record<string, string | boolean | undefined>;
}

/** Parses the common flags plus `extra` string options; prints usage for --help; names bad arguments. */
export function exampleArgs(
  name: string,
  usage: string,
  extra: Record<string, { type: 'string' | 'boolean'; default?: string | boolean }> = {},
): ExampleArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        out: { type: 'string' },
        epochs: { type: 'string' },
        seed: { type: 'string', default: '0' },
        help: { type: 'boolean', default: false },
        ...extra,
      },
      allowPositionals: false,
    });
  } catch (e) {
    console.error(`${name}: ${(e as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(usage);
    process.exit(0);
  }
  const num = (flag: string, s: string | boolean | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) {
      console.error(`${name}: --${flag} must be a non-negative integer, got '${String(s)}'`);
      process.exit(2);
    }
    return n;
  };
  return {
    quick: Boolean(v.quick),
    out: (v.out as string | undefined) ?? `runs/${name}`,
    epochs: num('epochs', v.epochs),
    seed: num('seed', v.seed) ?? 0,
    values: v,
  };
}
