// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors) as files, so PyTorch can
// read what wgrad writes and the other way round. The format itself (bytes in, bytes out, no Node APIs) is in
// safetensors.ts; this module adds the file I/O.
//
// Writes are atomic (temp file in the same folder, fsync, rename). Reads validate the whole file before any
// GPU tensor is made, and every error names the file and, where there is one, the offending tensor.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Tensor } from '@wgrad/tensor';
import type { Module } from './module.js';
import type { Optimizer } from './optim.js';
import {
  type ByteSource,
  type CheckpointContents,
  checkHost,
  checkpointContents,
  encodeSafetensors,
  loadCheckpointFrom,
  loadFrom,
  moduleContents,
  readHeader,
  readSafetensors,
  SafetensorsError,
  type SafetensorsHeader,
  uploadAll,
} from './safetensors.js';

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? out : out.subarray(0, done);
}

/** Runs `fn` on a ByteSource over the file at `path`, closing the file afterwards. */
async function withFile<T>(path: string, fn: (src: ByteSource) => Promise<T>): Promise<T> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return await fn({ size, read: (length, position) => readExactly(fh, length, position) });
  } finally {
    await fh.close();
  }
}

/** Reads and validates the header of a .safetensors file (tensor names, dtypes, shapes, offsets, metadata). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  return withFile(path, (src) => readHeader(src, path));
}

/**
 * Loads every tensor of a .safetensors file (floats as float32, integers as int32). The caller owns the
 * tensors (they belong to the current scope, if any). The file is fully validated before any is made.
 */
export async function loadTensors(
  path: string,
): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  checkHost();
  const { header, values } = await withFile(path, (src) => readSafetensors(src, path, null));
  return { tensors: uploadAll(values), metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------------
// Writing.

/** Writes `chunks` to `path` atomically: temp file in the same folder, fsync, rename, fsync the folder. */
async function writeAtomic(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fh: FileHandle | null = null;
  try {
    fh = await open(tmp, 'wx', 0o644);
    let pos = 0;
    for await (const c of chunks) {
      let done = 0;
      while (done < c.length) {
        const { bytesWritten } = await fh.write(c, done, c.length - done, pos);
        done += bytesWritten;
        pos += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  // Make the rename itself durable; not every platform lets a directory be opened and synced.
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Writes tensors to a .safetensors file (float32 → F32, int32 → I32), atomically: either `path` ends up
 * complete or, on any error, an existing `path` is left untouched and no temp file remains. Tensors are
 * laid out by name (all dtypes are 4 bytes), as the official writer does.
 */
export async function saveTensors(
  tensors: ReadonlyMap<string, Tensor>,
  path: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  const chunks = encodeSafetensors(tensors, path, metadata);
  try {
    await writeAtomic(path, chunks());
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(path, null, `cannot write the file: ${(e as Error).message}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Modules.

/** Saves `module.stateDict()` (PyTorch names) to a .safetensors file; `metadata` adds to `{format: 'pt'}`. */
export async function save(
  module: Module,
  path: string,
  opts: { metadata?: Record<string, string> } = {},
): Promise<void> {
  const { tensors, metadata } = moduleContents(module, opts);
  await saveTensors(tensors, path, metadata);
}

/**
 * Loads a .safetensors file (e.g. written by PyTorch's `safetensors.torch.save_file(model.state_dict())`)
 * into a module. Strict by default: missing or unexpected keys fail. Shapes must match; F64/F16/BF16 load as
 * float32 and I64 and the other integer types as int32. Everything is validated before any parameter is
 * written, so a failure leaves the module as it was. The `optimizer.*` tensors of a training checkpoint are
 * skipped.
 */
export async function load(module: Module, path: string, opts: { strict?: boolean } = {}): Promise<void> {
  checkHost();
  await withFile(path, (src) => loadFrom(src, path, module, opts));
}

// ---------------------------------------------------------------------------------------------------------
// Training checkpoints.

/**
 * Saves everything needed to resume training in one .safetensors file: the model's tensors under their
 * PyTorch names (so `model.load_state_dict(load_file(path), strict=False)` works in PyTorch), the optimizer's
 * state tensors under `optimizer.state.<i>.<name>`, and in `__metadata__` the JSON strings `wgrad.meta`,
 * `wgrad.optimizer` ({class, stepCount, lr, numParams, hyperParams}) and `wgrad.rng` (the RNG position).
 */
export async function saveCheckpoint(path: string, c: CheckpointContents): Promise<void> {
  const { tensors, metadata } = checkpointContents(path, c);
  await saveTensors(tensors, path, metadata);
}

/**
 * Restores a checkpoint written by saveCheckpoint: the model's parameters and buffers, the optimizer's state,
 * step count, lr and hyper-parameters (like torch's `optimizer.load_state_dict`), and the RNG position.
 * Returns the saved `meta`. Everything is validated first: on an error nothing (model, optimizer, RNG)
 * has changed.
 */
export async function loadCheckpoint<M extends Record<string, unknown> = Record<string, unknown>>(
  path: string,
  c: { model: Module; optimizer?: Optimizer },
): Promise<M> {
  checkHost();
  return withFile(path, (src) => loadCheckpointFrom<M>(src, path, c));
}
