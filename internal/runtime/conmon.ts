// Starts conmon for `runc create` and waits for its verdict on the sync pipe (fd 3, announced in
// _OCI_SYNCPIPE, as CRI-O does): `{"data": pid}` on success, `{"data": -1, "message": runc's
// stderr}` on failure. conmon forks its monitor, which calls setsid, so the container's monitor is
// not our child and survives the daemon; the process we spawn exits as soon as it has forked.
import { spawnProcess } from '../util/spawn';
import type { Readable } from 'node:stream';
import { CappedBuffer } from './capped-buffer';
import { parseSyncMessage } from './conmon-args';
import { runcErrorMessage } from './runc-error';
import { runtimeEnv } from './runc';

export interface ConmonSpawnResult {
  ok: boolean;
  /** Container pid when ok. */
  pid?: number;
  /** runc's (or conmon's) error text when not ok. */
  message?: string;
}

/**
 * `onDetached` runs when the process we spawned has exited cleanly: the monitor is forked and its
 * pid file written, while runc create typically still runs (7-8 ms after the spawn, against 65 ms
 * for the verdict, measured here), so the caller can place the monitor meanwhile.
 */
export function spawnConmon(
  conmonPath: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  onDetached?: () => void,
): Promise<ConmonSpawnResult> {
  return new Promise<ConmonSpawnResult>((resolve) => {
    const child = spawnProcess(conmonPath, args, {
      cwd,
      detached: true,
      // stderr only carries conmon's own early errors (bad flags) before its monitor detaches.
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: runtimeEnv({ _OCI_SYNCPIPE: '3' }),
    });
    const sync = child.stdio[3] as Readable;
    const stderr = new CappedBuffer(64 * 1024);
    let syncText = '';
    let settled = false;
    let parentExited = false;
    let verdict: ConmonSpawnResult | undefined;

    const finish = (r: ConmonSpawnResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sync.destroy();
      child.stderr?.destroy();
      child.unref();
      resolve(r);
    };
    // Success needs both the pid and the first conmon process gone: it writes the conmon pid file
    // just before exiting, and callers read that file next.
    const maybeFinish = (): void => {
      if (verdict && (parentExited || !verdict.ok)) finish(verdict);
    };
    const timer = setTimeout(
      () => finish({ ok: false, message: `conmon did not report the container within ${timeoutMs} ms` }),
      timeoutMs,
    );

    child.stderr?.on('data', (c: Buffer) => stderr.push(c));
    sync.on('data', (c: Buffer) => {
      syncText += c.toString('utf8');
      if (verdict || syncText.length > 1024 * 1024) return;
      let msg;
      try {
        msg = parseSyncMessage(syncText);
      } catch (err) {
        verdict = { ok: false, message: (err as Error).message };
        return maybeFinish();
      }
      if (!msg) return;
      verdict =
        msg.data > 0
          ? { ok: true, pid: msg.data }
          : { ok: false, message: runcErrorMessage(msg.message ?? '') || 'runtime create failed' };
      maybeFinish();
    });
    sync.on('error', () => undefined);
    // EOF without a verdict: conmon died before runc reported (bad flags, runc crashed silently).
    sync.on('close', () => {
      if (verdict) return;
      setTimeout(() => {
        verdict ??= {
          ok: false,
          message:
            stderr.toBuffer().toString('utf8').trim() || 'conmon exited without reporting the container',
        };
        maybeFinish();
      }, 20);
    });
    child.on('error', (err) => finish({ ok: false, message: `cannot run ${conmonPath}: ${err.message}` }));
    child.on('exit', (code) => {
      parentExited = true;
      if (code !== 0 && !verdict) {
        // Give stderr a moment to drain so the message is complete.
        setTimeout(() => {
          verdict ??= {
            ok: false,
            message: stderr.toBuffer().toString('utf8').trim() || `conmon exited with ${code}`,
          };
          maybeFinish();
        }, 20);
        return;
      }
      onDetached?.();
      maybeFinish();
    });
  });
}
