// The native exec path: berth-exec (native/src/exec-helper.c) enters a running container as
// `runc exec` does, at a small fraction of runc's CPU (no Go start-up, no state or spec parsing per
// call). Everything per container is worked out once, on the first exec: berth-exec's arguments
// from the cached spec, the init's start time (which berth-exec checks, so a reused pid is never
// entered), the init's cgroup.procs files, and the seccomp profile compiled to BPF with libseccomp.
// A spec with something berth-exec cannot reproduce stays on runc (logged once per container).
import { promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import type { OciSpec } from '../oci/spec-types';
import { nativeProgramPath } from '../util/native';
import { run } from '../util/run';
import {
  cgroupProcsFiles,
  execHelperArgs,
  seccompProgram,
  statStartTime,
  type ExecTarget,
} from './exec-helper-plan';

/** Where the build puts berth-exec (scripts/build-native.sh): next to the native addon. */
export function defaultExecHelperPath(): string | undefined {
  return nativeProgramPath('berth-exec');
}

/** The container an ExecSync runs in, as the daemon knows it. */
export interface ExecContainer {
  pid: number;
  spec: OciSpec;
}

interface Prepared {
  pid: number;
  /** undefined: this container's execs go through runc */
  target?: ExecTarget;
  /** the arguments of an exec that adds no env or cwd (every CRI ExecSync), built once */
  args?: string[];
  spec: OciSpec;
}

export class ExecHelper {
  private readonly prepared = new Map<string, Promise<Prepared>>();
  private mountinfo?: Promise<string>;

  constructor(
    readonly helperPath: string,
    /** dir for compiled seccomp programs (one file per container, removed with it) */
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Whether the helper binary exists (built where libseccomp's headers were present). */
  static available(helperPath: string): boolean {
    try {
      fs.accessSync(helperPath, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * berth-exec's arguments for this exec (without log/pid file/command), or undefined when the
   * container's execs stay on runc.
   */
  async args(
    id: string,
    c: ExecContainer,
    extra: { env?: string[]; cwd?: string },
  ): Promise<string[] | undefined> {
    let p = this.prepared.get(id);
    if (p) {
      const got = await p;
      if (got.pid !== c.pid || got.spec !== c.spec) p = undefined;
    }
    if (!p) {
      p = this.prepare(id, c);
      this.prepared.set(id, p);
    }
    const got = await p;
    if (!got.target) return undefined;
    if (!extra.env?.length && !extra.cwd) return got.args;
    const r = execHelperArgs(got.spec, got.target, extra);
    return r.ok ? r.value : undefined;
  }

  /** Drops what was prepared for a container (it is being deleted). */
  async forget(id: string): Promise<void> {
    this.prepared.delete(id);
    await fsp.unlink(this.bpfPath(id)).catch(() => undefined);
  }

  private bpfPath(id: string): string {
    return path.join(this.dir, `seccomp-${id}.bpf`);
  }

  private async prepare(id: string, c: ExecContainer): Promise<Prepared> {
    const fallback = (reason: string): Prepared => {
      this.log.info('exec through the runtime binary, not berth-exec', { id, reason });
      return { pid: c.pid, spec: c.spec };
    };
    try {
      const [stat, cgroup, mountinfo] = await Promise.all([
        fsp.readFile(`/proc/${c.pid}/stat`, 'utf8'),
        fsp.readFile(`/proc/${c.pid}/cgroup`, 'utf8'),
        (this.mountinfo ??= fsp.readFile('/proc/self/mountinfo', 'utf8')),
      ]);
      const startTime = statStartTime(stat);
      if (!startTime) return fallback('unreadable /proc stat');
      const target: ExecTarget = {
        id,
        pid: c.pid,
        startTime,
        cgroupProcs: cgroupProcsFiles(cgroup, mountinfo),
      };
      if (c.spec.linux.seccomp) {
        const prog = seccompProgram(c.spec.linux.seccomp);
        if (!prog.ok) return fallback(prog.reason);
        target.seccompBpf = await this.compile(id, prog.value);
      }
      const check = execHelperArgs(c.spec, target);
      if (!check.ok) return fallback(check.reason);
      return { pid: c.pid, spec: c.spec, target, args: check.value };
    } catch (e) {
      // the init is gone (the exec will fail the same way through runc) or compile failed
      return fallback((e as Error).message);
    }
  }

  private async compile(id: string, program: string): Promise<string> {
    const out = this.bpfPath(id);
    const src = `${out}.in`;
    await fsp.writeFile(src, program, { mode: 0o600 });
    try {
      await run(this.helperPath, ['compile-seccomp', src, out], { timeoutMs: 10_000 });
    } finally {
      await fsp.unlink(src).catch(() => undefined);
    }
    return out;
  }
}
