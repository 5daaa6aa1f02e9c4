// Crash-safe file helpers. Every record Berth keeps is written with atomicWrite: a temp file in the
// same directory, fsync, rename over the target, fsync of the directory. A kill -9 at any moment
// leaves either the old file or the new one, plus at most a `*.tmp-*` file that cleanTempFiles
// removes on the next start. With the native addon the steps run as one thread-pool job
// (native/src/atomic-write.c); without it, through fs.promises (atomicWriteSteps). replaceFile is
// the same without the fsyncs, for the few records that need not survive a power loss (also one
// job with the addon: 0.86 ms p50 on the 2-core VM against 1.43 for the four fs.promises trips,
// each waiting for a pool thread and then for the loop; writes 5 ms apart).
import { promises as fsp, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import { type BerthNative, findNativeAddon, native } from './native';
import { uniqueSuffix } from './unique';

export const TMP_MARK = '.tmp-';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `${path.basename(target)}${TMP_MARK}${uniqueSuffix()}`);
}

type Writer = (target: string, tmp: string, data: Buffer, mode: number, durable: boolean) => Promise<void>;
let nativeWriter: Writer | null | undefined;

/**
 * The addon's one-job write, or null where the addon is not built, cannot load (built for another
 * Node) or predates it: records are written either way.
 */
function writerOf(): Writer | null {
  if (nativeWriter !== undefined) return nativeWriter;
  nativeWriter = null;
  if (!findNativeAddon()) return null;
  let n: BerthNative;
  try {
    n = native();
  } catch {
    return null;
  }
  if (typeof n.atomicWriteFile !== 'function') return null;
  nativeWriter = (target, tmp, data, mode, durable) =>
    new Promise<void>((resolve, reject) =>
      n.atomicWriteFile(target, tmp, data, mode, durable, (err) => (err ? reject(err) : resolve())),
    );
  return nativeWriter;
}

const asBuffer = (data: string | Uint8Array): Buffer =>
  typeof data === 'string'
    ? Buffer.from(data)
    : Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** The addon's one-job write when it is there, else the fs.promises steps; `durable`: the fsyncs. */
async function writeReplacing(
  target: string,
  data: string | Uint8Array,
  mode: number,
  durable: boolean,
): Promise<void> {
  const write = writerOf();
  if (write) await write(target, tempPathFor(target), asBuffer(data), mode, durable);
  else await atomicWriteSteps(target, data, mode, durable);
}

/** Writes `target` crash-safely (see the top of this file). `mode` is less the umask, as open(2). */
export async function atomicWrite(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await writeReplacing(target, data, mode, true);
}

/**
 * atomicWrite through fs.promises, one call per step (the fallback without the addon); with
 * `sync` false, without its two fsyncs (replaceFile).
 */
export async function atomicWriteSteps(
  target: string,
  data: string | Uint8Array,
  mode = 0o600,
  sync = true,
): Promise<void> {
  const tmp = tempPathFor(target);
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  if (sync) await fsyncDir(path.dirname(target));
}

export async function atomicWriteJson(target: string, value: unknown): Promise<void> {
  await atomicWrite(target, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Replaces `target` as atomicWrite does (a temp file renamed over it: a kill -9 of berthd at any
 * moment leaves the old file or the new one, both in the page cache), but waits for no disk flush:
 * after a power loss the file may be the old one, or missing, or empty. Only for records whose loss
 * then is harmless (see RecordStore.put).
 */
export async function replaceFile(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await writeReplacing(target, data, mode, false);
}

/** Reads and parses a JSON file; undefined when it does not exist. Parse errors are thrown. */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Removes leftovers of interrupted atomic writes directly inside `dir`. Returns how many. */
export async function cleanTempFiles(dir: string): Promise<number> {
  let n = 0;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (name.includes(TMP_MARK)) {
      await fsp.rm(path.join(dir, name), { recursive: true, force: true });
      n++;
    }
  }
  return n;
}

/** Moves a record that cannot be parsed out of the way (kept for inspection) and returns its new path. */
export async function quarantine(file: string): Promise<string> {
  const dest = `${file}.corrupt-${Date.now()}`;
  await fsp.rename(file, dest);
  return dest;
}
