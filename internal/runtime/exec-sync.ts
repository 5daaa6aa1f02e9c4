// ExecSync through `runc exec` (or berth-exec, the native stand-in: exec-helper.ts) in the
// foreground: the exec'd process writes straight into our pipes (no copy through conmon), runc
// exits with its status.
//
// Cheap per call: no process spec is read or written by the daemon. Without --process, runc takes
// the container's own process from its bundle (user, groups, capabilities, rlimits, env, cwd,
// no_new_privileges, labels) and replaces only the arguments, which is exactly what an ExecSync
// asks for. runc's own messages go to a pipe on its fd 3 (`--log /proc/self/fd/3`), so a failure
// to start the command (no such binary, container stopped) is an error and not confused with the
// command's stderr or exit code. The only file is runc's pid file, which tells us the command is
// running (an inotify event on the exec dir) and which process group to kill on timeout. berth-exec
// reports the pid on its log pipe instead (`--pid-log`): no file per exec at all.
//
// Timeout (as containerd and CRI-O count it): the clock starts once the command runs, not when
// runc is spawned, so runc's own start-up on a busy node does not eat a probe's budget. runc's
// start-up is bounded separately (START_TIMEOUT_MS): a runc that cannot start the command in that
// time is an UNAVAILABLE error, not a probe timeout. On timeout the command's process group (runc's
// exec calls setsid, so the command leads its own group) is killed; the result then says timedOut
// and the CRI layer answers DEADLINE_EXCEEDED, which kubelet's exec prober reads as a probe
// timeout. A timer that fires after an event-loop stall first lets the already-arrived exit be
// processed, so a command that finished in time is never reported as timed out.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import { BerthError, Status, short } from '../errors';
import type { Logger } from '../log';
import {
  childRunning,
  nativeSpawner,
  spawnProcess,
  unwatchProcessExit,
  watchProcessExit,
} from '../util/spawn';
import { CappedBuffer } from './capped-buffer';
import type { FileEvents } from './file-events';
import { RuncError, classifyRuncError, runcLogError } from './runc-error';
import { readPidFile } from './pid-file';
import { runtimeEnv, type RuncCli } from './runc';
import type { ExecSyncOptions, ExecSyncResult } from './types';
import { uniqueSuffix } from '../util/unique';

/** berth-exec's `--pid-log` line (native/src/exec-helper.c log_pid). */
const STARTED_LINE = /^\{"level":"info","msg":"started","pid":(\d+)\}$/m;

export const DEFAULT_EXEC_OUTPUT_CAP = 16 * 1024 * 1024;
/** How long runc may take to start the command before the exec is an error. */
export const START_TIMEOUT_MS = 10_000;
/** After killing a timed-out command, how long stray holders of our pipes may keep them open. */
const DRAIN_GRACE_MS = 1000;
/** After killing a timed-out command, how long runc may take to notice before it is killed too. */
const KILL_ESCALATE_MS = 2000;
const MAX_RUNC_LOG = 64 * 1024;

export interface ExecSyncInput {
  runc: RuncCli;
  id: string;
  cmd: string[];
  opts: ExecSyncOptions;
  /** Dir for the pid file (removed after each exec); `events` watches it. */
  workDir: string;
  events: FileEvents;
  log: Logger;
  /** Overrides START_TIMEOUT_MS (tests). */
  startTimeoutMs?: number;
  /**
   * Run through berth-exec instead of `runc exec`: its path and the container's arguments (see
   * ExecHelper.args; they already carry opts.env/cwd). Same contract: --log, --pid-file (or
   * --pid-log), exit code.
   */
  helper?: { path: string; args: string[] };
}

export async function execSyncRunc(input: ExecSyncInput): Promise<ExecSyncResult> {
  const { id, cmd, workDir } = input;
  if (cmd.length === 0 || cmd[0] === '')
    throw new BerthError(Status.INVALID_ARGUMENT, 'exec command is empty');
  const pidName = `${id.slice(0, 24)}-${uniqueSuffix()}.pid`;
  // Without the native spawner (no real pipes for a child), runc logs to a scratch file.
  const logFile = nativeSpawner() ? undefined : path.join(workDir, `${pidName}.log`);
  // berth-exec with a log pipe says the pid there; runc (or a log file) needs the pid file
  const pidFile = input.helper && !logFile ? undefined : path.join(workDir, pidName);
  try {
    const run = await runExec(input, pidName, pidFile, logFile);
    if (logFile) run.runcLog = await fsp.readFile(logFile, 'utf8').catch(() => '');
    if (run.startTimedOut)
      throw new BerthError(
        Status.UNAVAILABLE,
        `exec in ${short(id)}: the runtime did not start the command (or report its end) within ${(input.startTimeoutMs ?? START_TIMEOUT_MS) / 1000} s`,
      );
    if (!run.result.timedOut) {
      const msg = runcLogError(run.runcLog);
      // runc itself failed: the command never ran (or runc lost track of it).
      if (msg) throw new RuncError('exec', classifyRuncError(msg), msg);
    }
    return run.result;
  } finally {
    // unlink, not rm: fs.rm walks (lstat, then unlink) even for one file
    if (pidFile) await fsp.unlink(pidFile).catch(() => undefined);
    if (logFile) await fsp.unlink(logFile).catch(() => undefined);
  }
}

interface RunOutcome {
  result: ExecSyncResult;
  runcLog: string;
  startTimedOut: boolean;
}

function runExec(
  input: ExecSyncInput,
  pidName: string,
  pidFile: string | undefined,
  logFile: string | undefined,
): Promise<RunOutcome> {
  const { runc, id, cmd, opts, log, events } = input;
  const cap = opts.maxOutputBytes ?? DEFAULT_EXEC_OUTPUT_CAP;
  const startTimeoutMs = input.startTimeoutMs ?? START_TIMEOUT_MS;
  return new Promise<RunOutcome>((resolve, reject) => {
    const logPath = logFile ?? '/proc/self/fd/3';
    const pidArgs = pidFile ? ['--pid-file', pidFile] : ['--pid-log'];
    const [file, args] = input.helper
      ? [input.helper.path, ['--log', logPath, ...pidArgs, ...input.helper.args, '--', ...cmd]]
      : [
          runc.runtimePath,
          [
            ...runc.globalArgs(),
            '--log',
            logPath,
            '--log-format',
            'json',
            'exec',
            ...pidArgs,
            ...(opts.cwd ? ['--cwd', opts.cwd] : []),
            ...(opts.env ?? []).flatMap((e) => ['--env', e]),
            id,
            ...cmd,
          ],
        ];
    // Own session: a signal meant for the daemon's group does not reach runc.
    const child = spawnProcess(file, args, {
      // fd 3: runc's log, reopened by runc through /proc/self/fd/3 (a real pipe, not a socket)
      stdio: logFile ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', 'os-pipe'],
      detached: true,
      env: runtimeEnv(),
    });
    const out = new CappedBuffer(cap);
    const err = new CappedBuffer(cap);
    const runcLog = new CappedBuffer(MAX_RUNC_LOG);
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.stdio[3]?.on('data', (c: Buffer) => {
      runcLog.push(c);
      if (!pidFile && !started) {
        // berth-exec's started line, written in one write before anything else of the command
        const m = STARTED_LINE.exec(runcLog.toBuffer().toString('utf8'));
        if (m) onStarted(Number(m[1]));
      }
    });
    let timedOut = false;
    let startTimedOut = false;
    let exitCode: number | null = null;
    let settled = false;
    let exited = false;
    const timers = new Set<NodeJS.Timeout>();
    const after = (ms: number, fn: () => void): void => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    };

    const finish = (): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      if (pidFile) events.off(pidName, onPidFile);
      if (commandPid) unwatchProcessExit(commandPid, onCommandEnd);
      for (const s of child.stdio) s?.destroy();
      resolve({
        result: {
          stdout: out.toBuffer(),
          stderr: err.toBuffer(),
          exitCode: timedOut ? -1 : (exitCode ?? -1),
          timedOut,
          stdoutTruncated: out.dropped,
          stderrTruncated: err.dropped,
        },
        runcLog: runcLog.toBuffer().toString('utf8'),
        startTimedOut,
      });
    };

    // A timer may run right after an event-loop stall, before the I/O that arrived during the
    // stall (runc's exit, the pid file) has been handled: let that I/O run first, then ask the
    // kernel whether runc is still there.
    const ifStillRunning = (fn: () => void): void => {
      setImmediate(() => {
        if (settled || exited || !childRunning(child)) return;
        fn();
      });
    };

    const expire = (startup: boolean): void => {
      if (startup) startTimedOut = true;
      timedOut = true;
      void killExec(child.pid, () => (pidFile ? readPidFile(pidFile) : commandPid), log, id);
      // runc waits for what it reaps; a child that left the command's process group can keep it
      // around. The caller's deadline wins: end runc itself and stop waiting.
      after(KILL_ESCALATE_MS, () => {
        log.warn('exec outlived its kill; killing runc', { id });
        killGroup(child.pid);
        after(DRAIN_GRACE_MS, finish);
      });
    };

    const timeoutMs = (opts.timeoutSec ?? 0) * 1000;
    const MAX_TIMER_MS = 2 ** 31 - 1;
    let started = false;
    // The command's own end, seen through its pidfd: on a busy node runc can take long to reap it
    // and exit after it, and that is no reason to call a finished command timed out.
    let commandPid: number | undefined;
    let commandEnded = false;
    const onCommandEnd = (): void => {
      commandEnded = true;
    };
    const watchCommand = (pid: number | undefined): void => {
      if (!pid || settled) return;
      commandPid = pid;
      // false: already gone (with the native spawner; without it nothing can be watched)
      if (!watchProcessExit(pid, onCommandEnd) && nativeSpawner()) commandEnded = true;
    };
    /** The command runs: its pid from the log pipe, or (undefined) to be read from the pid file. */
    const onStarted = (pid?: number): void => {
      if (started || settled) return;
      started = true;
      // a timeout past what a Node timer holds (~24.8 days) would fire at once: none then
      if (timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)
        after(timeoutMs, () =>
          ifStillRunning(() => {
            if (!commandEnded) return expire(false);
            // Finished in time; runc has yet to report it. Wait for runc, within its own bound.
            after(startTimeoutMs, () => ifStillRunning(() => expire(true)));
          }),
        );
      if (pid) watchCommand(pid);
      else if (pidFile) void readPidFile(pidFile).then(watchCommand);
    };
    const onPidFile = (): void => onStarted();
    if (pidFile) events.on(pidName, onPidFile);
    after(startTimeoutMs, () => {
      if (started) return;
      if (!pidFile) return ifStillRunning(() => expire(true));
      // The event may have been lost (inotify overflow): the pid file tells.
      void fsp.access(pidFile).then(
        () => onStarted(),
        () => ifStillRunning(() => expire(true)),
      );
    });

    child.on('error', (e: Error) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      if (pidFile) events.off(pidName, onPidFile);
      reject(new RuncError('exec', 'other', `cannot run ${file}: ${e.message}`));
    });
    child.on('exit', (code: number | null, sig: NodeJS.Signals | null) => {
      exited = true;
      exitCode = code ?? (sig ? 128 + (signalNumber(sig) ?? 0) : -1);
      // Normally 'close' follows once the pipes drain. Processes the command left behind (in
      // another session) may hold them open: after a timeout, do not wait for those.
      if (timedOut) after(DRAIN_GRACE_MS, finish);
      else after(DRAIN_GRACE_MS * 5, finish);
    });
    child.on('close', finish);
  });
}

async function killExec(
  runcPid: number | undefined,
  commandPid: () => Promise<number | undefined> | number | undefined,
  log: Logger,
  id: string,
): Promise<void> {
  // runc writes the pid file once the process exists; a timeout during start-up may precede it.
  for (let i = 0; i < 20; i++) {
    const pid = await commandPid();
    if (pid) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // group or process already gone
        }
      }
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  log.warn('exec timed out before its pid was known; killing runc', { id });
  killGroup(runcPid);
}

/** SIGKILL to runc's process group (it was spawned in its own session, so the group is its own). */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  const n = osConstants.signals[sig];
  return typeof n === 'number' ? n : undefined;
}
