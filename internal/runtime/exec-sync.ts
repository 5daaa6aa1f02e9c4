// ExecSync through `runc exec` in the foreground: the exec'd process writes straight into our
// pipes (no copy through conmon), runc exits with its status. runc's own messages go to a separate
// --log file, so a failure to start the command (no such binary, container stopped) is an error
// and not confused with the command's stderr or exit code.
//
// Timeout: runc's exec path calls setsid, so the command leads its own process group; killing
// that group (host pid from --pid-file) ends the command and the children it spawned. The result
// then says timedOut with exit code -1; the CRI layer turns it into DEADLINE_EXCEEDED, which is
// what containerd returns and what kubelet's exec prober recognises as a probe timeout.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import { BerthError, Status, short } from '../errors';
import type { Logger } from '../log';
import { CappedBuffer } from './capped-buffer';
import { execProcessSpec, prepareExec, type ExecScratch } from './exec-spec';
import { RuncError, classifyRuncError } from './runc-error';
import { runtimeEnv, type RuncCli } from './runc';
import type { ExecSyncOptions, ExecSyncResult, OciProcess } from './types';

export const DEFAULT_EXEC_OUTPUT_CAP = 16 * 1024 * 1024;
/** After killing a timed-out command, how long stray holders of our pipes may keep them open. */
const DRAIN_GRACE_MS = 1000;
/** After killing a timed-out command, how long runc may take to notice before it is killed too. */
const KILL_ESCALATE_MS = 2000;

export interface ExecSyncInput {
  runc: RuncCli;
  id: string;
  bundle: string;
  cmd: string[];
  opts: ExecSyncOptions;
  /** Scratch dir for process.json, pid and log files (removed after each exec). */
  workDir: string;
  log: Logger;
}

export async function execSyncRunc(input: ExecSyncInput): Promise<ExecSyncResult> {
  const { runc, id, bundle, cmd, opts, workDir, log } = input;
  let config: { process?: OciProcess };
  try {
    config = JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8')) as {
      process?: OciProcess;
    };
  } catch (err) {
    throw new BerthError(
      Status.NOT_FOUND,
      `container ${short(id)}: cannot read its config.json: ${String(err)}`,
    );
  }
  if (!config.process)
    throw new BerthError(Status.INTERNAL, `container ${short(id)}: config.json has no process`);
  // A pipe is not a terminal: exec-sync output is collected, never a tty.
  const spec = execProcessSpec(config.process, cmd, { ...opts, tty: false });

  const scratch = await prepareExec(workDir, id, spec);
  try {
    const run = await runExec(runc, id, scratch, opts, log);
    if (!run.timedOut) {
      const msg = await scratch.runtimeError();
      if (msg) {
        // runc itself failed: the command never ran (or runc lost track of it).
        throw new RuncError('exec', classifyRuncError(msg), msg);
      }
    }
    return run;
  } finally {
    await scratch.remove();
  }
}

function runExec(
  runc: RuncCli,
  id: string,
  scratch: ExecScratch,
  opts: ExecSyncOptions,
  log: Logger,
): Promise<ExecSyncResult> {
  const cap = opts.maxOutputBytes ?? DEFAULT_EXEC_OUTPUT_CAP;
  return new Promise<ExecSyncResult>((resolve, reject) => {
    const child = spawn(
      runc.runtimePath,
      [...runc.globalArgs(), ...scratch.execArgs],
      // Own process group: a signal meant for the daemon's group does not reach runc.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: runtimeEnv() },
    );
    const out = new CappedBuffer(cap);
    const err = new CappedBuffer(cap);
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    let exitCode: number | null = null;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;

    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      if (escalateTimer) clearTimeout(escalateTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        stdout: out.toBuffer(),
        stderr: err.toBuffer(),
        exitCode: timedOut ? -1 : (exitCode ?? -1),
        timedOut,
        stdoutTruncated: out.dropped,
        stderrTruncated: err.dropped,
      });
    };

    const timeoutMs = (opts.timeoutSec ?? 0) * 1000;
    let escalateTimer: NodeJS.Timeout | undefined;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            void killExec(child.pid, scratch.pidFile, log, id);
            // runc waits for what it reaps; a child that left the command's process group can keep
            // it around. The caller's deadline wins: end runc itself and stop waiting.
            escalateTimer = setTimeout(() => {
              log.warn('exec outlived its kill; killing runc', { id });
              killGroup(child.pid);
              graceTimer ??= setTimeout(finish, DRAIN_GRACE_MS);
            }, KILL_ESCALATE_MS);
          }, timeoutMs)
        : undefined;

    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      settled = true;
      reject(new RuncError('exec', 'other', `cannot run ${runc.runtimePath}: ${e.message}`));
    });
    child.on('exit', (code, sig) => {
      exitCode = code ?? (sig ? 128 + (signalNumber(sig) ?? 0) : -1);
      // Normally 'close' follows once the pipes drain. Processes the command left behind (in
      // another session) may hold them open: after a timeout, do not wait for those.
      if (timedOut) {
        if (escalateTimer) clearTimeout(escalateTimer);
        graceTimer ??= setTimeout(finish, DRAIN_GRACE_MS);
      }
    });
    child.on('close', finish);
  });
}

async function killExec(
  runcPid: number | undefined,
  pidFile: string,
  log: Logger,
  id: string,
): Promise<void> {
  // runc writes the pid file once the process exists; a timeout during start-up may precede it.
  for (let i = 0; i < 20; i++) {
    const pid = Number.parseInt(await fsp.readFile(pidFile, 'utf8').catch(() => ''), 10);
    if (pid > 0) {
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

/** SIGKILL to runc's process group (it was spawned detached, so the group is its own). */
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
