// What an OCI runtime binary can do, asked once per handler: `runc features` (OCI runtime features
// JSON) for recursive read-only mounts, and whether it has a `checkpoint` command at all (crun may
// be built without CRIU). And whether CRIU itself works on this kernel (`criu check`).
import { spawnProcess } from '../util/spawn';
import { CappedBuffer } from './capped-buffer';
import { runtimeEnv } from './runc';

export interface RuntimeBinaryFeatures {
  /** mountOptions of `<runtime> features` contains "rro" */
  rro: boolean;
  /** mountOptions of `<runtime> features` (strings only); undefined when unreadable */
  mountOptions?: string[];
  /** the raw features JSON, undefined when the runtime has no `features` command */
  raw?: unknown;
}

/** Parses `<runtime> features` output; anything unreadable means no optional feature. */
export function parseFeatures(stdout: string): RuntimeBinaryFeatures {
  try {
    const raw = JSON.parse(stdout) as { mountOptions?: unknown };
    const opts = Array.isArray(raw.mountOptions)
      ? raw.mountOptions.filter((o): o is string => typeof o === 'string')
      : [];
    return { rro: opts.includes('rro'), mountOptions: opts, raw };
  } catch {
    return { rro: false };
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** spawn itself failed (no such binary) */
  spawnError?: string;
}

/** Runs a short command with bounded output and a timeout; never rejects. */
export function runShort(bin: string, args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawnProcess(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: runtimeEnv() });
    const out = new CappedBuffer(4 * 1024 * 1024);
    const err = new CappedBuffer(256 * 1024);
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: '', stderr: '', spawnError: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: out.toBuffer().toString('utf8'), stderr: err.toBuffer().toString('utf8') });
    });
  });
}

export async function detectFeatures(runtimePath: string): Promise<RuntimeBinaryFeatures> {
  const r = await runShort(runtimePath, ['features']);
  return r.code === 0 ? parseFeatures(r.stdout) : { rro: false };
}

/** Why the runtime cannot checkpoint, or undefined when it has the command. */
export async function checkpointUnsupported(runtimePath: string): Promise<string | undefined> {
  const r = await runShort(runtimePath, ['checkpoint', '--help']);
  if (r.spawnError) return `cannot run ${runtimePath}: ${r.spawnError}`;
  if (r.code === 0) return undefined;
  return `${runtimePath} has no checkpoint command (built without CRIU support): ${firstLine(r.stderr || r.stdout)}`;
}

/** The lines of `criu check` output that say what is wrong (its "Error (...)" lines). */
export function criuProblem(output: string): string {
  const errors = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^Error|error/i.test(l));
  return (errors.length ? errors.slice(0, 3) : [firstLine(output)]).join('; ');
}

let criuCache: Promise<string | undefined> | undefined;

/** Why CRIU cannot work here (not installed, `criu check` fails), or undefined when it works.
 * Asked once per daemon: the kernel does not change under us. */
export function criuUnavailable(): Promise<string | undefined> {
  criuCache ??= (async () => {
    const r = await runShort('criu', ['check']);
    if (r.spawnError) return `criu is not installed (not found in PATH: ${r.spawnError})`;
    const text = `${r.stdout}\n${r.stderr}`;
    // criu check exits 0 even when kernel feature detection fails; its output tells.
    if (r.code === 0 && !/Error/.test(text)) return undefined;
    return `criu check fails on this kernel: ${criuProblem(text)}`;
  })();
  return criuCache;
}

function firstLine(s: string): string {
  return (s.trim().split('\n')[0] ?? '').slice(0, 300);
}
