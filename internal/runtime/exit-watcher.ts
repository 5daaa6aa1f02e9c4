// Learns that containers exited from events, not by polling each one: conmon writes `exits/<id>`
// (an inotify event on the exits dir, shared by every waiter), and a conmon that dies without
// writing it is seen through its pidfd (the native spawner's reaper watches any pid). Either event
// runs `check(id)` for that id only. inotify can drop events and a pidfd cannot be had for a
// conmon that is already gone, so a slow safety sweep (default 30 s) checks every waiter too; it
// is a net, not the mechanism: an idle node with 60 containers reads nothing between sweeps.
import type { Logger } from '../log';
import { unwatchProcessExit, watchProcessExit } from '../util/spawn';
import type { FileEvents } from './file-events';

export const DEFAULT_SWEEP_MS = 30_000;

export interface ExitWatcherDeps {
  /** Events of the exits dir. */
  events: FileEvents;
  /** Returns true when the exit is known (or known never to come): the waiter is then resolved. */
  check: (id: string) => Promise<boolean>;
  /** The pid of the container's monitor, when it is known and alive (watched for its death). */
  monitorPid?: (id: string) => Promise<number | undefined>;
  log: Logger;
  /** Safety sweep period; default DEFAULT_SWEEP_MS. */
  sweepMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Watched {
  waiters: Set<Waiter>;
  onEvent: () => void;
  pid?: number;
}

export class ExitWatcher {
  private timer?: NodeJS.Timeout;
  private readonly ids = new Map<string, Watched>();
  private readonly checking = new Set<string>();
  /** Ids whose check was asked for while one was in flight: checked again right after. */
  private readonly again = new Set<string>();
  /** Counters for tests and diagnostics. */
  readonly stats = { eventChecks: 0, sweepChecks: 0, sweeps: 0 };

  constructor(private readonly deps: ExitWatcherDeps) {
    deps.events.onUnknown(() => this.sweep());
  }

  /** Resolves once `check(id)` is true; rejects when the signal aborts. */
  wait(id: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.remove(id, waiter);
        reject(abortError(signal));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let w = this.ids.get(id);
      if (!w) {
        const entry: Watched = {
          waiters: new Set(),
          onEvent: () => {
            this.stats.eventChecks++;
            void this.checkId(id);
          },
        };
        w = entry;
        this.ids.set(id, entry);
        this.deps.events.on(id, entry.onEvent);
        void this.watchMonitor(id, entry);
      }
      w.waiters.add(waiter);
      this.ensureSweep();
      // The file may already be there: check once now that the watch is set up.
      void this.checkId(id);
    });
  }

  /** Checks every waiter now (what the timer does; tests call it directly). */
  sweep(): void {
    this.stats.sweeps++;
    for (const id of [...this.ids.keys()]) {
      this.stats.sweepChecks++;
      void this.checkId(id);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const [id, w] of this.ids) {
      this.unwatch(id, w);
      for (const waiter of w.waiters) waiter.reject(new Error('exit watcher closed'));
    }
    this.ids.clear();
  }

  private async watchMonitor(id: string, w: Watched): Promise<void> {
    const pid = await this.deps.monitorPid?.(id).catch(() => undefined);
    if (pid === undefined || this.ids.get(id) !== w) return;
    // false: already gone; the check made by wait() (or the sweep) sees that.
    if (watchProcessExit(pid, w.onEvent)) w.pid = pid;
    else w.onEvent();
  }

  private unwatch(id: string, w: Watched): void {
    this.deps.events.off(id, w.onEvent);
    if (w.pid !== undefined) unwatchProcessExit(w.pid, w.onEvent);
  }

  private remove(id: string, waiter: Waiter): void {
    const w = this.ids.get(id);
    if (!w) return;
    w.waiters.delete(waiter);
    if (w.waiters.size === 0) this.drop(id, w);
  }

  private drop(id: string, w: Watched): void {
    this.unwatch(id, w);
    this.ids.delete(id);
    if (this.ids.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private ensureSweep(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), this.deps.sweepMs ?? DEFAULT_SWEEP_MS);
    this.timer.unref();
  }

  private async checkId(id: string): Promise<void> {
    if (!this.ids.has(id)) return;
    if (this.checking.has(id)) {
      this.again.add(id);
      return;
    }
    this.checking.add(id);
    try {
      const done = await this.deps.check(id);
      if (!done) return;
      const w = this.ids.get(id);
      if (!w) return;
      this.drop(id, w);
      for (const waiter of w.waiters) waiter.resolve();
    } catch (err) {
      const w = this.ids.get(id);
      if (!w) return;
      this.drop(id, w);
      for (const waiter of w.waiters) waiter.reject(err);
    } finally {
      this.checking.delete(id);
      if (this.again.delete(id)) void this.checkId(id);
    }
  }
}

function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}
