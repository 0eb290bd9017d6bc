// ImageCsvDataset: images listed in a CSV manifest (the topoDL layout: trainDF.csv / testDF.csv with columns
// chpN, chpPth, mskPth, division; image paths relative to the CSV's folder), decoded lazily from PNG.
import { readFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { parseString } from '@fast-csv/parse';
import type { Dataset, Sample } from './dataset.js';
import { checkIndex } from './dataset.js';
import { DataError, errorText } from './errors.js';
import {
  type Channels,
  channelProblem,
  type DecodedImage,
  decodePng,
  nativeChannels,
  PngError,
  readPngHeader,
} from './png.js';

/**
 * Labels of the topoDL manifests (column `division`), including the misspellings in the published CSVs:
 * background (also "Backround") → 0, positive (also "Postive") → 1. Keys are matched case-insensitively
 * after trimming.
 */
export const TOPO_DL_LABELS: Readonly<Record<string, number>> = Object.freeze({
  background: 0,
  backround: 0,
  positive: 1,
  postive: 1,
});

export type BadRowKind =
  | 'fields'
  | 'empty-path'
  | 'unknown-label'
  | 'missing-image'
  | 'unreadable'
  | 'corrupt-image'
  | 'wrong-size'
  | 'wrong-channels';

/** A manifest row left out under `onBadRow: 'skip'`. */
export interface SkippedRow {
  /** 1-based data row (the header is not counted). */
  row: number;
  /** The image file, or the manifest when the row names no usable image. */
  file: string;
  reason: string;
  kind: BadRowKind;
}

/** One usable row of the manifest. */
export interface ManifestRow {
  /** 1-based data row (the header is not counted). */
  row: number;
  /** Absolute path of the image. */
  image: string;
  /** The image path as written in the CSV. */
  path: string;
  /** The label as written in the CSV (trimmed), '' without a label column. */
  label: string;
  /** Integer code of the label (-1 without a label column). */
  y: number;
}

export interface ImageCsvOptions {
  /** Column holding image paths, relative to `root` (default 'chpPth'). */
  imageColumn?: string;
  /** Column holding labels (default 'division'); null for an unlabeled manifest (every y is -1). */
  labelColumn?: string | null;
  /** Label string → code, matched case-insensitively after trimming (default TOPO_DL_LABELS). */
  labelMap?: Readonly<Record<string, number>>;
  /** Keep only rows with these labels (names as in labelMap, e.g. 'background'), or those a function keeps. */
  filter?: string | readonly string[] | ((label: string, y: number) => boolean);
  /** Force the channel count: 1 gray (alpha dropped; colour images are errors), 3 RGB, 4 RGBA. */
  channels?: Channels;
  /** Expected image size (never resized); default: the size of the first image. */
  size?: { height: number; width: number };
  /** What to do with a bad row: throw (default) or leave it out, listing it in `skipped`. */
  onBadRow?: 'error' | 'skip';
  /**
   * What `fromCsv` checks of each image up front: 'header' (default: exists, is a PNG, size and channels
   * from its header), 'decode' (decodes every image: catches corrupt pixel data too; fills the cache when
   * `cache`), 'none'. Problems found later, by `get`, always throw.
   */
  verify?: 'none' | 'header' | 'decode';
  /** Keep decoded images in memory (default false). */
  cache?: boolean;
  /** Folder that image paths are relative to (default: the CSV's folder). */
  root?: string;
  /** Where the skip summary line goes (default console.warn). */
  log?: (line: string) => void;
}

/** Reads a CSV into rows of trimmed strings, skipping blank lines. */
async function readCsv(file: string): Promise<string[][]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new DataError({ file, reason: `cannot read CSV manifest: ${errorText(e)}` }, { cause: e });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (!text.trim()) throw new DataError({ file, reason: 'empty file: no header row and no data rows' });
  return new Promise((resolveRows, reject) => {
    const rows: string[][] = [];
    parseString<string[], string[]>(text, { headers: false, ignoreEmpty: true, trim: true })
      .on('data', (r: string[]) => rows.push(r))
      .on('error', (e: unknown) =>
        reject(
          // (fast-csv parses whole chunks before emitting rows: the row count so far says nothing here.)
          new DataError({ file, reason: `CSV parse error: ${errorText(e)}` }),
        ),
      )
      .on('end', () => resolveRows(rows));
  });
}

const norm = (s: string) => s.trim().toLowerCase();

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

class BadRow extends Error {
  constructor(
    readonly kind: BadRowKind,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * Images listed in a CSV manifest, decoded from PNG on demand (`get` is async), as samples
 * `{ x: Float32Array (C·H·W in [0, 1]), y: label code }`:
 *
 * ```ts
 * const train = await ImageCsvDataset.fromCsv('topoDL/trainDF.csv', { channels: 3, filter: 'background' });
 * const loader = new DataLoader(train, { batchSize: 32, shuffle: true });
 * ```
 *
 * The manifest is parsed and checked up front (see `verify`); every problem (missing column, empty file,
 * missing or corrupt PNG, wrong size or channel count, unknown label) is a DataError naming the file, the
 * 1-based data row and the value, or with `onBadRow: 'skip'` a row left out and listed in `skipped`.
 */
export class ImageCsvDataset implements Dataset<Sample> {
  readonly csvPath: string;
  readonly rows: readonly ManifestRow[];
  /** Rows left out under `onBadRow: 'skip'`. */
  readonly skipped: readonly SkippedRow[];
  /** Class names by code (the first labelMap key of each code); empty without a label column. */
  readonly classes: readonly string[];
  readonly channels: Channels | undefined;
  readonly imageColumn: string;
  readonly size: { height: number; width: number } | undefined;
  private expected: { channels: number; height: number; width: number } | null = null;
  /** Where `expected` came from when not from the options, for messages. */
  private expectedFrom = '';
  private readonly cache: Map<number, Float32Array> | null;

  private constructor(
    csvPath: string,
    rows: ManifestRow[],
    skipped: SkippedRow[],
    classes: string[],
    opts: ImageCsvOptions,
  ) {
    this.csvPath = csvPath;
    this.rows = rows;
    this.skipped = skipped;
    this.classes = classes;
    this.channels = opts.channels;
    this.imageColumn = opts.imageColumn ?? 'chpPth';
    this.size = opts.size ? { ...opts.size } : undefined;
    this.cache = opts.cache ? new Map() : null;
    if (opts.size && opts.channels)
      this.expected = { channels: opts.channels, height: opts.size.height, width: opts.size.width };
  }

  get length(): number {
    return this.rows.length;
  }

  /** [C, H, W] of every sample, once known (from the options, the header check, or the first decoded image). */
  get sampleShape(): readonly number[] | undefined {
    return this.expected ? [this.expected.channels, this.expected.height, this.expected.width] : undefined;
  }

  /** Parses and checks the manifest `csvPath`; images are decoded later, by `get`. */
  static async fromCsv(csvPath: string, opts: ImageCsvOptions = {}): Promise<ImageCsvDataset> {
    const file = resolve(csvPath);
    const {
      imageColumn = 'chpPth',
      labelColumn = 'division',
      labelMap = TOPO_DL_LABELS,
      onBadRow = 'error',
      verify = 'header',
    } = opts;
    if (opts.channels !== undefined && ![1, 3, 4].includes(opts.channels))
      throw new Error(`ImageCsvDataset: channels must be 1, 3 or 4, got ${opts.channels}`);
    if (opts.size && [opts.size.height, opts.size.width].some((d) => !Number.isInteger(d) || d < 1))
      throw new Error(`ImageCsvDataset: invalid size ${JSON.stringify(opts.size)}`);
    const root = opts.root ? resolve(opts.root) : dirname(file);

    // Labels: normalised map and class names.
    const codes = new Map<string, number>();
    const classes: string[] = [];
    for (const [k, v] of Object.entries(labelMap)) {
      if (!Number.isInteger(v) || v < 0)
        throw new Error(`ImageCsvDataset: labelMap['${k}'] = ${v} is not a non-negative integer`);
      codes.set(norm(k), v);
      classes[v] ??= norm(k);
    }
    for (let i = 0; i < classes.length; i++) classes[i] ??= String(i);
    let keep: ((label: string, y: number) => boolean) | null = null;
    if (typeof opts.filter === 'function') keep = opts.filter;
    else if (opts.filter !== undefined) {
      const names = typeof opts.filter === 'string' ? [opts.filter] : opts.filter;
      const wanted = new Set<number>();
      for (const n of names) {
        const c = codes.get(norm(n));
        if (c === undefined)
          throw new Error(
            `ImageCsvDataset: filter label '${n}' is not in the label map (${[...codes.keys()].join(', ')})`,
          );
        wanted.add(c);
      }
      keep = (_, y) => wanted.has(y);
    }

    // Header.
    const table = await readCsv(file);
    const header = table[0]!;
    const col = (name: string) => {
      const at = header.flatMap((h, i) => (h === name ? [i] : []));
      if (at.length === 0)
        throw new DataError({
          file,
          reason: `missing column '${name}' (the header has: ${header.map((h) => `'${h}'`).join(', ')}); set imageColumn / labelColumn to use other columns`,
        });
      if (at.length > 1)
        throw new DataError({ file, reason: `column '${name}' appears ${at.length} times in the header` });
      return at[0]!;
    };
    const imgCol = col(imageColumn);
    const labCol = labelColumn === null ? -1 : col(labelColumn);
    if (table.length < 2) throw new DataError({ file, reason: 'no data rows (only a header)' });

    const skipped: SkippedRow[] = [];
    const bad = (row: number, image: ManifestRow | null, kind: BadRowKind, reason: string) => {
      if (onBadRow === 'error')
        throw new DataError({
          file: image?.image ?? file,
          row,
          manifest: file,
          ...(image ? { column: imageColumn, value: image.path } : {}),
          reason,
        });
      skipped.push({ row, file: image?.image ?? file, reason, kind });
    };

    // Rows: fields, label, filter, path.
    let candidates: ManifestRow[] = [];
    for (let r = 1; r < table.length; r++) {
      const fields = table[r]!;
      if (fields.length !== header.length) {
        bad(
          r,
          null,
          'fields',
          `has ${fields.length} fields, the header has ${header.length}: ${JSON.stringify(fields.join(','))}`,
        );
        continue;
      }
      let label = '';
      let y = -1;
      if (labCol >= 0) {
        label = fields[labCol]!;
        const c = codes.get(norm(label));
        if (c === undefined) {
          bad(
            r,
            null,
            'unknown-label',
            `unknown label '${label}' in column '${labelColumn}' (known: ${[...codes.keys()].join(', ')}; pass labelMap to add labels)`,
          );
          continue;
        }
        y = c;
      }
      if (keep && !keep(classes[y] ?? label, y)) continue;
      const value = fields[imgCol]!;
      if (!value) {
        bad(r, null, 'empty-path', `empty value in column '${imageColumn}'`);
        continue;
      }
      const rel = sep === '/' ? value.replaceAll('\\', '/') : value;
      candidates.push({ row: r, image: resolve(root, rel), path: value, label, y });
    }

    const ds = new ImageCsvDataset(file, candidates, skipped, labCol >= 0 ? classes : [], opts);
    // Image checks, in parallel; the first usable row fixes the expected size and channels when not given.
    if (verify !== 'none' && candidates.length) {
      const problems = new Map<number, BadRow>();
      const headers = new Map<number, { width: number; height: number; channels: number }>();
      // Rows that name the same file share one header probe.
      const probes = new Map<string, ReturnType<typeof readHeader>>();
      await forEachLimit(candidates, verify === 'decode' ? 8 : 64, async (m) => {
        try {
          if (verify === 'decode') {
            const img = await ds.decode(m);
            headers.set(m.row, img);
            if (ds.cache) ds.cache.set(m.row, img.data);
          } else {
            let probe = probes.get(m.image);
            if (!probe) {
              probe = readHeader(m.image);
              probe.catch(() => {}); // (each row that awaits it handles the error)
              probes.set(m.image, probe);
            }
            const h = await probe;
            const p = channelProblem(h.colorType, opts.channels);
            if (p) throw new BadRow('wrong-channels', p);
            headers.set(m.row, {
              width: h.width,
              height: h.height,
              channels: opts.channels ?? nativeChannels(h.colorType),
            });
          }
        } catch (e) {
          if (e instanceof BadRow) problems.set(m.row, e);
          else throw e;
        }
      });
      const usable: ManifestRow[] = [];
      for (const m of candidates) {
        const p = problems.get(m.row);
        if (p) {
          bad(m.row, m, p.kind, p.reason);
          continue;
        }
        const h = headers.get(m.row)!;
        const want = ds.expected ?? {
          channels: opts.channels ?? h.channels,
          height: opts.size?.height ?? h.height,
          width: opts.size?.width ?? h.width,
        };
        const problem = ds.shapeProblem(h, want);
        if (problem) {
          bad(m.row, m, problem.kind, problem.reason);
          continue;
        }
        if (!ds.expected) {
          ds.expected = want;
          ds.expectedFrom = ` (as the image of row ${m.row})`;
        }
        usable.push(m);
      }
      candidates = usable;
      (ds as { rows: readonly ManifestRow[] }).rows = usable;
    }

    skipped.sort((a, b) => a.row - b.row);
    if (skipped.length) {
      const kinds = new Map<string, number>();
      for (const s of skipped) kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + 1);
      const total = candidates.length + skipped.length;
      (opts.log ?? console.warn)(
        `ImageCsvDataset: skipped ${skipped.length} of ${total} rows of ${file} (${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}); see dataset.skipped`,
      );
    }
    if (!candidates.length)
      throw new DataError({
        file,
        reason: `no usable rows${opts.filter !== undefined ? ' match the filter' : ''}${skipped.length ? ` (${skipped.length} skipped as bad)` : ''}`,
      });
    return ds;
  }

  private shapeProblem(
    got: { channels: number; height: number; width: number },
    want: { channels: number; height: number; width: number },
  ): { kind: BadRowKind; reason: string } | null {
    if (got.width !== want.width || got.height !== want.height)
      return {
        kind: 'wrong-size',
        reason: `image is ${got.width}x${got.height} (width x height), expected ${want.width}x${want.height}${this.size ? '' : this.expectedFrom}`,
      };
    if (got.channels !== want.channels)
      return {
        kind: 'wrong-channels',
        reason: `image has ${got.channels} channels, expected ${want.channels}${this.channels ? '' : `${this.expectedFrom}; set channels to convert`}`,
      };
    return null;
  }

  /** Reads and decodes the image of a row; BadRow on failure. */
  private async decode(m: ManifestRow): Promise<DecodedImage> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(m.image);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT') throw new BadRow('missing-image', 'image not found');
      throw new BadRow('unreadable', `cannot read image: ${errorText(e)}`);
    }
    try {
      return decodePng(bytes, this.channels ? { channels: this.channels } : {});
    } catch (e) {
      if (e instanceof PngError)
        throw new BadRow(
          e.message.startsWith('has ') || e.message.startsWith('is a colour')
            ? 'wrong-channels'
            : 'corrupt-image',
          e.message,
        );
      throw e;
    }
  }

  private rowError(m: ManifestRow, reason: string): DataError {
    return new DataError({
      file: m.image,
      row: m.row,
      manifest: this.csvPath,
      column: this.imageColumn,
      value: m.path,
      reason,
    });
  }

  /** The sample of row i (decoded now, or from the cache). Throws a DataError for a bad image. */
  async get(i: number): Promise<Sample> {
    checkIndex('ImageCsvDataset.get', i, this.rows.length);
    const m = this.rows[i]!;
    const cached = this.cache?.get(m.row);
    if (cached) return { x: cached, y: m.y };
    let img: DecodedImage;
    try {
      img = await this.decode(m);
    } catch (e) {
      if (e instanceof BadRow) throw this.rowError(m, e.reason);
      throw e;
    }
    const want = this.expected ?? {
      channels: this.channels ?? img.channels,
      height: this.size?.height ?? img.height,
      width: this.size?.width ?? img.width,
    };
    const problem = this.shapeProblem(img, want);
    if (problem) throw this.rowError(m, problem.reason);
    if (!this.expected) {
      this.expected = want;
      this.expectedFrom = ` (as the image of row ${m.row})`;
    }
    this.cache?.set(m.row, img.data);
    return { x: img.data, y: m.y };
  }
}

/** readPngHeader with problems as BadRow. */
async function readHeader(path: string) {
  try {
    return await readPngHeader(path);
  } catch (e) {
    if (e instanceof PngError) throw new BadRow('corrupt-image', e.message);
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new BadRow('missing-image', 'image not found');
    throw new BadRow('unreadable', `cannot read image: ${errorText(e)}`);
  }
}
