// Runs one runc command and returns its stdout; a non-zero exit becomes a RuncError carrying
// runc's own message. Output is bounded so a misbehaving runtime cannot flood the daemon.
import { spawnProcess, SYSTEM_PATH } from '../util/spawn';
import { CappedBuffer } from './capped-buffer';
import { RuncError, classifyRuncError, runcErrorMessage } from './runc-error';

const MAX_STDOUT = 64 * 1024 * 1024;
const MAX_STDERR = 256 * 1024;

export interface RuncRunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
}

export class RuncCli {
  constructor(
    readonly runtimePath: string,
    readonly root: string,
    /** the systemd cgroup driver: cgroupsPath is `slice:prefix:name` */
    readonly systemdCgroup = false,
  ) {}

  /** Arguments that go before every subcommand. */
  globalArgs(): string[] {
    return ['--root', this.root, ...(this.systemdCgroup ? ['--systemd-cgroup'] : [])];
  }

  run(args: string[], opts: RuncRunOptions = {}): Promise<Buffer> {
    const command = args[0] ?? '';
    return new Promise<Buffer>((resolve, reject) => {
      const child = spawnProcess(this.runtimePath, [...this.globalArgs(), ...args], {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: runtimeEnv(),
      });
      const out = new CappedBuffer(MAX_STDOUT);
      const err = new CappedBuffer(MAX_STDERR);
      child.stdout?.on('data', (c: Buffer) => out.push(c));
      child.stderr?.on('data', (c: Buffer) => err.push(c));
      let timedOut = false;
      const timer =
        opts.timeoutMs && opts.timeoutMs > 0
          ? setTimeout(() => {
              timedOut = true;
              child.kill('SIGKILL');
            }, opts.timeoutMs)
          : undefined;
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(new RuncError(command, 'other', `cannot run ${this.runtimePath}: ${e.message}`));
      });
      child.on('close', (code, sig) => {
        if (timer) clearTimeout(timer);
        if (code === 0) return resolve(out.toBuffer());
        if (timedOut) return reject(new RuncError(command, 'other', `timed out after ${opts.timeoutMs} ms`));
        const msg = runcErrorMessage(err.toBuffer().toString('utf8')) || `exited with ${code ?? sig}`;
        reject(new RuncError(command, classifyRuncError(msg), msg));
      });
      if (child.stdin) {
        child.stdin.on('error', () => undefined); // runc may exit before reading; its exit code tells.
        child.stdin.end(opts.input);
      }
    });
  }
}

/** A small, fixed environment for runtime processes: nothing of the daemon's leaks into runc. */
export function runtimeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? SYSTEM_PATH,
    ...extra,
  };
}
