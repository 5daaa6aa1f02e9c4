// Streaming exec: `runc exec --process <spec>` in the foreground, as CRI-O does.
//
// Without a tty, runc's stdio are our pipes and runc relays them to the command (stdin EOF
// closes the command's stdin). With a tty, runc is given a pseudo-terminal we open (native
// openpty, raw mode) as its stdin/stdout/stderr: runc allocates the container-side terminal
// itself, relays between the two, and copies our terminal's size onto it at start and on each
// SIGWINCH — so a resize is TIOCSWINSZ on our master followed by SIGWINCH to runc. This needs no
// console socket (which requires runc -d, and then nobody but a subreaper could learn the exit
// code) and no extra monitor process: runc's own exit status is the command's.
//
// The process spec is the container's own (user, env, capabilities, cwd) with the command
// replaced (runtime/exec-spec.ts). runc runs in its own process group; when the client goes
// away, the command's process group (pid from --pid-file) and runc are killed.
import { spawnProcess, type Proc } from '../util/spawn';
import { readPidFile } from '../runtime/pid-file';
import { closeSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from '../log';
import { execProcessSpec, prepareExec } from '../runtime/exec-spec';
import { runtimeEnv } from '../runtime/runc';
import type { OciProcess } from '../runtime/types';
import {
  exitCodeStatus,
  internalErrorStatus,
  successStatus,
  type K8sStatus,
  type TerminalSize,
} from './channel';
import { openPty, setWinsize } from './native-io';
import { firstSize, type SessionIO } from './session-io';
import type { ExecTarget } from './types';

/** How long a tty exec waits for the client's initial terminal size before starting. */
const INITIAL_SIZE_WAIT_MS = 300;
/** After runc exits, how long output still in flight may take to drain. */
const DRAIN_AFTER_EXIT_MS = 2000;

export async function runExec(
  t: ExecTarget,
  io: SessionIO,
  workDir: string,
  log: Logger,
): Promise<K8sStatus> {
  const sizes = new SizeQueue();
  let base: OciProcess | undefined;
  try {
    base = (
      JSON.parse(await fsp.readFile(path.join(t.bundle, 'config.json'), 'utf8')) as { process?: OciProcess }
    ).process;
  } catch (err) {
    return internalErrorStatus(`cannot read the container's config: ${String(err)}`);
  }
  if (!base) return internalErrorStatus('container config has no process');
  const spec = execProcessSpec(base, t.cmd, { tty: t.tty });
  // With a tty, the size must be on the container's terminal before the command starts: runc
  // applies process.consoleSize at creation (its own copy from our terminal comes only after
  // start, and a quick `stty size` would see 0 0). So wait for the client's first size here.
  let initial: TerminalSize | undefined;
  if (t.tty) {
    initial = await firstSize(io.resize, INITIAL_SIZE_WAIT_MS, (s) => sizes.push(s));
    if (initial) spec.consoleSize = { height: initial.height, width: initial.width };
  }
  const scratch = await prepareExec(workDir, t.containerId, spec);
  const args = ['--root', t.runtimeRoot, ...scratch.execArgs];
  try {
    const code = t.tty
      ? await execTty(io, t.runtimePath, args, scratch.pidFile, initial, sizes, log)
      : await execPipes(t, io, args, scratch.pidFile, log);
    if (io.signal.aborted) return internalErrorStatus('client disconnected');
    const msg = await scratch.runtimeError();
    if (msg) return internalErrorStatus(msg);
    return code === 0 ? successStatus() : exitCodeStatus(code, t.cmd);
  } finally {
    await scratch.remove();
  }
}

/**
 * Terminal sizes from the client: held while the terminal does not exist yet, then handed over in
 * order, and from then on delivered as they come.
 */
class SizeQueue {
  private held: TerminalSize[] = [];
  private sink: ((s: TerminalSize) => void) | undefined;

  push(s: TerminalSize): void {
    if (this.sink) this.sink(s);
    else this.held.push(s);
  }

  deliverTo(sink: (s: TerminalSize) => void): void {
    this.sink = sink;
    for (const s of this.held.splice(0)) sink(s);
  }
}

function exitCodeOf(code: number | null, sig: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = sig ? osConstants.signals[sig] : undefined;
  return typeof n === 'number' ? 128 + n : -1;
}

/** Kills the exec'd command's process group (and the command), then runc's group. */
async function killExec(child: Proc, pidFile: string): Promise<void> {
  const pid = await readPidFile(pidFile);
  const targets = pid ? [-pid, pid] : [];
  if (child.pid) targets.push(-child.pid);
  for (const p of targets) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function onAbort(io: SessionIO, fn: () => void): () => void {
  if (io.signal.aborted) {
    fn();
    return () => undefined;
  }
  io.signal.addEventListener('abort', fn, { once: true });
  return () => io.signal.removeEventListener('abort', fn);
}

function execPipes(
  t: ExecTarget,
  io: SessionIO,
  args: string[],
  pidFile: string,
  log: Logger,
): Promise<number> {
  return new Promise<number>((resolve) => {
    const child = spawnProcess(t.runtimePath, args, {
      stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
      env: runtimeEnv(),
    });
    let exitCode = -1;
    const off = onAbort(io, () => void killExec(child, pidFile));
    if (io.stdin && child.stdin) {
      const cin = child.stdin;
      cin.on('error', () => undefined); // the command may exit without reading
      io.stdin.pipe(cin);
    }
    relay(child.stdout, io.stdout);
    relay(child.stderr, io.stderr);
    child.on('error', (err) => {
      log.warn('exec: cannot run runtime', { error: err.message });
      off();
      resolve(-1);
    });
    child.on('exit', (code, sig) => {
      exitCode = exitCodeOf(code, sig);
    });
    child.on('close', () => {
      off();
      io.stdin?.unpipe();
      resolve(exitCode);
    });
  });
}

/** Copies a child's output to the client's stream, with backpressure; drains it when there is none. */
function relay(from: NodeJS.ReadableStream | null, to: Writable | undefined): void {
  if (!from) return;
  if (!to) {
    from.resume();
    return;
  }
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed) return;
    if (!to.write(chunk)) {
      from.pause();
      const go = (): void => {
        to.off('drain', go);
        to.off('close', go);
        from.resume();
      };
      to.on('drain', go);
      to.on('close', go);
    }
  });
}

async function execTty(
  io: SessionIO,
  runtimePath: string,
  args: string[],
  pidFile: string,
  initial: TerminalSize | undefined,
  sizes: SizeQueue,
  log: Logger,
): Promise<number> {
  let child: Proc;
  if (io.signal.aborted) return -1;
  const pty = openPty(initial?.height ?? 24, initial?.width ?? 80);
  const master = pty.master;
  let term: tty.ReadStream;
  try {
    child = spawnProcess(runtimePath, args, {
      stdio: [pty.slave, pty.slave, pty.slave],
      detached: true,
      env: runtimeEnv(),
    });
  } finally {
    closeSync(pty.slave);
  }
  try {
    // A ReadStream over the master is a libuv tty handle: non-blocking, readable and writable.
    term = new tty.ReadStream(master);
  } catch (err) {
    closeSync(master);
    child.kill('SIGKILL');
    throw err;
  }
  const c = child;
  // Sizes that came while runc was starting, then each later one, go to the terminal.
  sizes.deliverTo((s) => {
    try {
      setWinsize(master, s.height, s.width);
      if (c.pid) process.kill(c.pid, 'SIGWINCH');
    } catch {
      // terminal or runc already gone
    }
  });
  return new Promise<number>((resolve) => {
    let exitCode: number | undefined;
    let outputDone = false;
    let settled = false;
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (drainTimer) clearTimeout(drainTimer);
      off();
      io.stdin?.unpipe();
      term.destroy(); // closes the master fd
      resolve(exitCode ?? -1);
    };
    const off = onAbort(io, () => {
      void killExec(c, pidFile);
    });
    term.on('error', (err: NodeJS.ErrnoException) => {
      // EIO: every holder of the terminal's other side is gone, i.e. all output was read.
      if (err.code !== 'EIO') log.debug('exec tty read error', { error: err.message });
      outputDone = true;
      if (exitCode !== undefined) finish();
    });
    term.on('end', () => {
      outputDone = true;
      if (exitCode !== undefined) finish();
    });
    relay(term, io.stdout);
    if (io.stdin) {
      // A terminal has no EOF of its own: the client sends ^D itself if it wants one.
      io.stdin.on('data', (chunk: Buffer) => {
        if (!term.destroyed) term.write(chunk);
      });
    }
    c.on('error', (err) => {
      log.warn('exec: cannot run runtime', { error: err.message });
      exitCode = -1;
      finish();
    });
    c.on('exit', (code, sig) => {
      exitCode = exitCodeOf(code, sig);
      if (outputDone) finish();
      else drainTimer = setTimeout(finish, DRAIN_AFTER_EXIT_MS);
    });
  });
}
