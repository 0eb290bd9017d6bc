// PNG decoding to float32 CHW in [0, 1] (pngjs), and a cheap header probe.
import { open } from 'node:fs/promises';
import { PNG } from 'pngjs';
import { errorText } from './errors.js';

/** Channel counts a decoded image can be forced to: gray, RGB, RGBA. */
export type Channels = 1 | 3 | 4;

export interface DecodedImage {
  /** Values in [0, 1], channel-major (CHW). */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** PNG colour type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA. */
  colorType: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const COLOR_NAMES: Record<number, string> = { 0: 'gray', 2: 'RGB', 3: 'palette', 4: 'gray+alpha', 6: 'RGBA' };
/** Channels of each colour type as decoded without forcing (palette: RGB). */
const NATIVE_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

/** A PNG problem; the caller adds which file. */
export class PngError extends Error {
  override name = 'PngError';
}

export function colorTypeName(colorType: number): string {
  return COLOR_NAMES[colorType] ?? `colour type ${colorType}`;
}

/** Channels an image of this colour type decodes to when no channel count is forced. */
export function nativeChannels(colorType: number): number {
  return NATIVE_CHANNELS[colorType] ?? 0;
}

/** Parses the signature and IHDR chunk (the first 33 bytes). */
export function parsePngHeader(bytes: Uint8Array): PngHeader {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b))
    throw new PngError(bytes.length === 0 ? 'empty file, not a PNG' : 'not a PNG file (bad signature)');
  if (bytes.length < 33) throw new PngError(`truncated PNG: ${bytes.length} bytes, the header needs 33`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!);
  if (v.getUint32(8) !== 13 || type !== 'IHDR')
    throw new PngError('corrupt PNG: the first chunk is not IHDR');
  const header = {
    width: v.getUint32(16),
    height: v.getUint32(20),
    bitDepth: bytes[24]!,
    colorType: bytes[25]!,
  };
  if (!(header.colorType in COLOR_NAMES))
    throw new PngError(`corrupt PNG: invalid colour type ${header.colorType}`);
  if (!header.width || !header.height)
    throw new PngError(`corrupt PNG: size ${header.width}x${header.height}`);
  return header;
}

/** Reads just the header of a PNG file. */
export async function readPngHeader(path: string): Promise<PngHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(33);
    const { bytesRead } = await fh.read(buf, 0, 33, 0);
    return parsePngHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * Checks that an image of `colorType` can be decoded to `channels`: 1 needs a gray image (gray, gray+alpha,
 * or a palette whose colours are all gray, which only decoding can tell); 3 and 4 take any image. Returns
 * the reason when not.
 */
export function channelProblem(colorType: number, channels: Channels | undefined): string | null {
  if (channels === 1 && (colorType === 2 || colorType === 6))
    return `has ${nativeChannels(colorType)} channels (${colorTypeName(colorType)}), expected 1 (gray)`;
  return null;
}

interface PngjsImage {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  data: Uint8Array | Uint16Array;
  palette?: number[][] | boolean;
  transColor?: number[];
}

/**
 * Decodes a PNG (bit depths 1–16; gray, gray+alpha, RGB, RGBA, palette) to float32 CHW in [0, 1]. Without
 * `channels`, an image keeps its own channels (gray 1, gray+alpha 2, RGB 3, RGBA 4, palette 3); `channels: 1`
 * takes gray images only (alpha dropped), `3` gives RGB (gray replicated, alpha dropped), `4` RGBA (alpha 1
 * where the image has none). Throws PngError for corrupt data or an impossible channel conversion.
 */
export function decodePng(bytes: Uint8Array, opts: { channels?: Channels } = {}): DecodedImage {
  parsePngHeader(bytes);
  let img: PngjsImage;
  try {
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    img = PNG.sync.read(buf, { skipRescale: true }) as unknown as PngjsImage;
  } catch (e) {
    throw new PngError(`corrupt PNG: ${errorText(e)}`);
  }
  const { width: W, height: H, depth, colorType, data } = img;
  const n = W * H;
  if (data.length < 4 * n)
    throw new PngError(`corrupt PNG: decoded ${data.length} values for ${W}x${H} RGBA`);
  const palette = Array.isArray(img.palette) ? img.palette : null;
  const wanted = opts.channels;
  const problem = channelProblem(colorType, wanted);
  if (problem) throw new PngError(problem);
  if (wanted === 1 && colorType === 3 && palette?.some((c) => c[0] !== c[1] || c[1] !== c[2]))
    throw new PngError('is a colour palette image, expected 1 channel (gray)');
  // pngjs leaves palette images as 8-bit RGBA and other depths unscaled (skipRescale).
  const max = colorType === 3 ? 255 : 2 ** depth - 1;
  // pngjs zeroes the colour of pixels that match a tRNS key colour: put it back (their alpha stays 0).
  if (img.transColor && (colorType === 0 || colorType === 2)) {
    const t = img.transColor;
    for (let p = 0; p < n; p++)
      if (data[4 * p + 3] === 0) {
        data[4 * p] = t[0]!;
        data[4 * p + 1] = t[1] ?? t[0]!;
        data[4 * p + 2] = t[2] ?? t[0]!;
      }
  }
  const C = wanted ?? nativeChannels(colorType);
  // Source RGBA component of each output channel.
  const src = C === 1 ? [0] : C === 2 ? [0, 3] : C === 3 ? [0, 1, 2] : [0, 1, 2, 3];
  const out = new Float32Array(C * n);
  for (let c = 0; c < C; c++) {
    const k = src[c]!;
    const o = c * n;
    for (let p = 0; p < n; p++) out[o + p] = data[4 * p + k]! / max;
  }
  return { data: out, channels: C, height: H, width: W };
}
