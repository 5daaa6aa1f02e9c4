// The one place where berthd creates processes. Node's child_process.spawn forks on the main
// thread (the kernel copies the daemon's page tables: ~5 ms idle, ~30 ms on a busy node, with every
// RPC waiting); here the native addon makes the child with posix_spawn (vfork-style, no copy) on a
// thread-pool thread and reaps it from a reaper thread that waits on pidfds, so creating and
// reaping a process costs the event loop microseconds.
//
// The returned object behaves like the subset of ChildProcess that Berth uses (pid, stdio streams,
// kill, 'spawn' / 'error' / 'exit' / 'close' events), so callers keep their shape. Guarantees, for
// every child: its own process group (or session with `detached`), only the given environment
// (PATH alone by default), every fd but the mapped ones closed, default signal dispositions and an
// empty signal mask, and reaping (no zombies) whether or not anyone listens for the exit.
//
// Where the addon is not built (unit tests of pure modules), child_process.spawn is used instead.
import { spawn as nodeSpawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsc } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { findNativeAddon, native, type NativeError } from './native';

/** Directories searched for a bare command name; PATH may be minimal when berthd runs as a service. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * One entry per child fd (0, 1, 2, 3, ...): 'ignore' is /dev/null; 'pipe' is a unix socket pair
 * whose other end the parent holds (as Node's child_process does: it can be half-closed, so ending
 * the child's stdin is an EOF it sees), written by the parent for fd 0 and read by it for every
 * other fd; 'os-pipe' is a real pipe(2), read by the parent (for a child that reopens it through
 * /proc/self/fd, which a socket does not allow); a number is a parent fd handed to the child as is
 * (e.g. a pty's slave).
 */
export type StdioEntry = 'ignore' | 'pipe' | 'os-pipe' | number;

export interface SpawnOptions {
  /** The child's whole environment; default PATH only. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** default ['ignore', 'pipe', 'pipe'] */
  stdio?: StdioEntry[];
  /** setsid: own session (and process group); otherwise the child still gets its own group. */
  detached?: boolean;
}

/** The part of ChildProcess that Berth uses; both the native spawner and child_process give it. */
export interface Proc extends EventEmitter {
  readonly pid?: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly stdio: readonly (Readable | Writable | null | undefined)[];
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals | number): boolean;
  unref(): void;
}

interface NativeSpawn {
  setExitHandler(fn: (pid: number, code: number, signal: number, watched: boolean) => void): void;
  spawn(
    file: string,
    args: string[],
    env: string[],
    cwd: string | null,
    fds: number[],
    flags: number,
    cb: (err: NativeError | undefined, pid: number | undefined) => void,
  ): void;
  watchPid(pid: number): boolean;
  pipe(): [number, number];
  socketpair(): [number, number];
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  processAlive(pid: number): boolean;
}

const children = new Map<number, NativeProc>();
const watched = new Map<number, Set<() => void>>();
let nat: NativeSpawn | null | undefined;

function addon(): NativeSpawn | null {
  if (nat !== undefined) return nat;
  if (process.env.BERTH_SPAWN === 'node' || !findNativeAddon()) return (nat = null);
  const n = native() as unknown as NativeSpawn;
  n.setExitHandler((pid, code, signal, isWatch) => {
    if (isWatch) {
      const cbs = watched.get(pid);
      watched.delete(pid);
      if (cbs) for (const cb of cbs) cb();
      return;
    }
    const child = children.get(pid);
    children.delete(pid);
    child?.exited(code, signal);
  });
  return (nat = n);
}

/** True when processes are made by the native spawner (false: child_process fallback). */
export function nativeSpawner(): boolean {
  return addon() !== null;
}

/** Starts `file` with `args`. Errors (no such file, bad cwd) come as an 'error' event, as with spawn. */
export function spawnProcess(file: string, args: readonly string[], opts: SpawnOptions = {}): Proc {
  const env = opts.env ?? { PATH: process.env.PATH ?? SYSTEM_PATH };
  const stdio = opts.stdio ?? ['ignore', 'pipe', 'pipe'];
  const n = addon();
  if (!n) {
    return nodeSpawn(file, [...args], {
      env,
      cwd: opts.cwd,
      detached: opts.detached ?? false,
      stdio: stdio.map((s) => (s === 'os-pipe' ? 'pipe' : s)),
    }) as unknown as Proc;
  }
  return new NativeProc(n, file, args, env, stdio, opts);
}

/**
 * Calls `onGone` once process `pid` (any process, not only our children) has ended; false when it
 * does not exist. Event driven (pidfd), no polling. Without the addon: false (callers then rely on
 * their own checks).
 */
export function watchProcessExit(pid: number, onGone: () => void): boolean {
  const n = addon();
  if (!n) return false;
  let set = watched.get(pid);
  if (!set) {
    if (!n.watchPid(pid)) return false;
    watched.set(pid, (set = new Set()));
  }
  set.add(onGone);
  return true;
}

/** Stops calling `onGone` for `pid` (the pidfd stays until the process ends; that is harmless). */
export function unwatchProcessExit(pid: number, onGone: () => void): void {
  watched.get(pid)?.delete(onGone);
}

/** Whether our child `pid` is still running, asked of the kernel now (not from queued events). */
export function childRunning(p: Proc): boolean {
  if (p.exitCode !== null || p.signalCode !== null || !p.pid) return false;
  const n = addon();
  if (!n) return true;
  return n.processAlive(p.pid);
}

const resolved = new Map<string, string>();

/** Absolute path of a command, searched in the child's PATH (then SYSTEM_PATH) once and cached. */
export function resolveCommand(file: string, envPath?: string): string {
  if (file.includes('/')) return file;
  const key = `${envPath ?? ''}\0${file}`;
  const hit = resolved.get(key);
  if (hit) return hit;
  for (const dir of `${envPath ?? ''}:${SYSTEM_PATH}`.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, file);
    try {
      accessSync(p, fsc.X_OK);
      resolved.set(key, p);
      return p;
    } catch {
      // next dir
    }
  }
  return file; // posix_spawn reports ENOENT, as spawn would
}

function signalName(n: number): NodeJS.Signals | null {
  if (!n) return null;
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}

class NativeProc extends EventEmitter implements Proc {
  pid?: number;
  stdin: Writable | null = null;
  stdout: Readable | null = null;
  stderr: Readable | null = null;
  readonly stdio: (Readable | Writable | null)[] = [];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private openStreams = 0;
  private hasExited = false;
  private closed = false;
  private refd = true;

  constructor(
    n: NativeSpawn,
    file: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    stdio: StdioEntry[],
    opts: SpawnOptions,
  ) {
    super();
    const childFds: number[] = [];
    const ourEnds: (number | null)[] = [];
    const toClose: number[] = [];
    try {
      stdio.forEach((s, i) => {
        if (s === 'pipe' || s === 'os-pipe') {
          const [r, w] = s === 'pipe' ? n.socketpair() : n.pipe();
          if (i === 0) {
            childFds.push(r);
            ourEnds.push(w);
            toClose.push(r);
          } else {
            childFds.push(w);
            ourEnds.push(r);
            toClose.push(w);
          }
        } else if (s === 'ignore') {
          childFds.push(-1);
          ourEnds.push(null);
        } else {
          // the caller may close its fd as soon as this returns; the spawn runs later
          const d = n.dupFd(s);
          childFds.push(d);
          ourEnds.push(null);
          toClose.push(d);
        }
      });
    } catch (err) {
      for (const fd of [...toClose, ...ourEnds]) if (fd !== null) n.closeFd(fd);
      process.nextTick(() => this.fail(err as Error));
      return;
    }
    ourEnds.forEach((fd, i) => {
      if (fd === null) {
        this.stdio.push(null);
        return;
      }
      const sock = new net.Socket({ fd, readable: i !== 0, writable: i === 0, allowHalfOpen: true });
      this.openStreams++;
      sock.once('close', () => {
        this.openStreams--;
        this.maybeClose();
      });
      this.stdio.push(sock);
    });
    this.stdin = (this.stdio[0] as Writable | null) ?? null;
    this.stdout = (this.stdio[1] as Readable | null) ?? null;
    this.stderr = (this.stdio[2] as Readable | null) ?? null;
    const envList = Object.entries(env)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    const flags = opts.detached ? 1 : 2;
    try {
      n.spawn(
        resolveCommand(file, env.PATH),
        [file, ...args],
        envList,
        opts.cwd ?? null,
        childFds,
        flags,
        (err, pid) => {
          for (const fd of toClose) n.closeFd(fd);
          if (err || !pid) {
            this.fail(err ?? new Error(`spawn ${file} failed`));
            return;
          }
          this.pid = pid;
          children.set(pid, this);
          this.emit('spawn');
        },
      );
    } catch (err) {
      for (const fd of toClose) n.closeFd(fd);
      process.nextTick(() => this.fail(err as Error));
    }
  }

  private fail(err: Error): void {
    const e = err as NodeJS.ErrnoException;
    const wrapped = Object.assign(new Error(`spawn ${e.path ?? ''} ${e.code ?? ''}: ${e.message}`.trim()), {
      code: e.code,
      errno: e.errno,
      syscall: e.syscall,
      path: e.path,
    });
    for (const s of this.stdio) s?.destroy();
    this.emit('error', wrapped);
  }

  /** Called by the reaper's handler. */
  exited(code: number, signal: number): void {
    this.hasExited = true;
    this.exitCode = code >= 0 ? code : null;
    this.signalCode = signalName(signal);
    // Nobody reads the child's stdin any more (as child_process does): let 'close' come.
    this.stdin?.destroy();
    this.emit('exit', this.exitCode, this.signalCode);
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.closed || !this.hasExited || this.openStreams > 0) return;
    this.closed = true;
    this.emit('close', this.exitCode, this.signalCode);
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (!this.pid || this.hasExited) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Lets the daemon exit while this child runs: its pipes stop holding the loop. */
  unref(): void {
    if (!this.refd) return;
    this.refd = false;
    for (const s of this.stdio) (s as net.Socket | null)?.unref?.();
  }
}
