// Waits for conmon exit files. One fs.watch on the exits dir serves every waiter; a slow poll backs
// it up because inotify can drop events (and cannot see files that appeared before the watch).
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log';

export interface ExitWatcherDeps {
  dir: string;
  /** Returns true when the exit is known (or known never to come): the waiter is then resolved. */
  check: (id: string) => Promise<boolean>;
  log: Logger;
  pollMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class ExitWatcher {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly checking = new Set<string>();
  /** Ids whose check was asked for while one was in flight: checked again right after. */
  private readonly again = new Set<string>();

  constructor(private readonly deps: ExitWatcherDeps) {}

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
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(waiter);
      this.ensureRunning();
      // The file may already be there: check once now that the watch is set up.
      void this.checkId(id);
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const set of this.waiters.values()) for (const w of set) w.reject(new Error('exit watcher closed'));
    this.waiters.clear();
  }

  private remove(id: string, w: Waiter): void {
    const set = this.waiters.get(id);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.waiters.delete(id);
    if (this.waiters.size === 0) this.stop();
  }

  private ensureRunning(): void {
    if (!this.watcher) {
      try {
        this.watcher = watch(this.deps.dir, { persistent: false }, (_event, name) => {
          if (name && this.waiters.has(String(name))) void this.checkId(String(name));
        });
        this.watcher.on('error', (err) => {
          this.deps.log.warn('exit dir watch failed; polling only', { error: String(err) });
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch (err) {
        this.deps.log.warn('cannot watch exit dir; polling only', { error: String(err) });
      }
    }
    if (!this.timer) {
      this.timer = setInterval(() => {
        for (const id of [...this.waiters.keys()]) void this.checkId(id);
      }, this.deps.pollMs ?? 500);
      this.timer.unref();
    }
  }

  private stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async checkId(id: string): Promise<void> {
    if (!this.waiters.has(id)) return;
    if (this.checking.has(id)) {
      this.again.add(id);
      return;
    }
    this.checking.add(id);
    try {
      const done = await this.deps.check(id);
      if (!done) return;
      const set = this.waiters.get(id);
      this.waiters.delete(id);
      if (set) for (const w of set) w.resolve();
      if (this.waiters.size === 0) this.stop();
    } catch (err) {
      const set = this.waiters.get(id);
      this.waiters.delete(id);
      if (set) for (const w of set) w.reject(err);
      if (this.waiters.size === 0) this.stop();
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
