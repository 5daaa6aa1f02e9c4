// One inotify watch on a directory, its events handed out by file name: the exit watcher learns
// that conmon wrote `exits/<id>`, ExecSync that runc wrote its pid file. Listeners are called for
// every event on their name (create, rename into the dir, change); the watch is opened at the
// first listener and kept (an idle watch costs nothing). inotify can drop events (queue overflow) and cannot
// report what happened before the watch: callers keep a slow safety check of their own.
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log';

export class FileEvents {
  private watcher?: FSWatcher;
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Called on every event when the watch overflows or fails (names unknown: check everything). */
  private readonly anyListeners = new Set<() => void>();
  private failed = false;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** True while the directory is watched (false after the watch failed: callers must poll). */
  get watching(): boolean {
    return this.watcher !== undefined;
  }

  on(name: string, fn: () => void): void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    this.ensure();
  }

  off(name: string, fn: () => void): void {
    const set = this.listeners.get(name);
    if (!set) return;
    set.delete(fn);
    if (set.size === 0) this.listeners.delete(name);
  }

  /** Listener for events whose name is unknown (the watch lost track). */
  onUnknown(fn: () => void): void {
    this.anyListeners.add(fn);
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.listeners.clear();
  }

  private ensure(): void {
    if (this.watcher || this.failed) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        if (!name) {
          for (const fn of this.anyListeners) fn();
          return;
        }
        const set = this.listeners.get(String(name));
        if (set) for (const fn of [...set]) fn();
      });
      this.watcher.on('error', (err) => {
        this.log.warn('directory watch failed; relying on the safety sweep', {
          dir: this.dir,
          error: String(err),
        });
        this.watcher?.close();
        this.watcher = undefined;
        for (const fn of this.anyListeners) fn();
      });
    } catch (err) {
      this.failed = true;
      this.log.warn('cannot watch directory; relying on the safety sweep', {
        dir: this.dir,
        error: String(err),
      });
    }
  }
}
