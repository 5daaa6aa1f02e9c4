// Runs a short-lived host tool (CNI plugins, ip, tar, unshare) to completion through the spawner:
// a timeout, bounded output capture and a clear error naming the command.
import { resolveCommand, spawnProcess, SYSTEM_PATH } from './spawn';
import * as path from 'node:path';

export interface RunOptions {
  /** written to the child's stdin, then stdin is closed */
  input?: string;
  /** full environment of the child; default: PATH only */
  env?: NodeJS.ProcessEnv;
  /** the child is SIGKILLed after this long; default 30 s */
  timeoutMs?: number;
  /** bytes of stdout kept; more is an error (a plugin answering megabytes is broken); default 4 MiB */
  maxStdout?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const STDERR_KEEP = 8192;

export { SYSTEM_PATH };

export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxStdout = opts.maxStdout ?? 4 << 20;
  return new Promise((resolve, reject) => {
    const child = spawnProcess(file, args, {
      env: opts.env, // spawnProcess's default: PATH only
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let outLen = 0;
    let overflow = false;
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout?.on('data', (b: Buffer) => {
      outLen += b.length;
      if (outLen > maxStdout) {
        if (!overflow) child.kill('SIGKILL');
        overflow = true;
        return;
      }
      out.push(b);
    });
    child.stderr?.on('data', (b: Buffer) => {
      err = (err + b.toString('utf8')).slice(-STDERR_KEEP);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (overflow) {
        reject(new Error(`${path.basename(file)} wrote more than ${maxStdout} bytes to stdout`));
        return;
      }
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err, timedOut });
    });
    // A child that exits without reading stdin makes the write fail with EPIPE; its exit status tells more.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** Describes a failed run for an error message: exit status and the tail of stderr. */
export function describeFailure(what: string, r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`;
  const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
  return `${what} ${how}${tail ? `: ${tail}` : ''}`;
}

/** Absolute path of a host tool (ip, mount, umount, unshare), searched in SYSTEM_PATH once. */
export function tool(name: string): string {
  const p = resolveCommand(name);
  if (!p.includes('/')) throw new Error(`${name} not found in ${SYSTEM_PATH}`);
  return p;
}
