// Slow cleanup done after an RPC has answered: jobs run a few at a time, each under a key (the
// object being cleaned up) and a group (e.g. its pod), so a caller can wait for one job, for every
// job of a group, or for all of them. A job's failure is the job's to log; the queue only keeps
// going. The backlog is the caller's to bound (see `size`).
export class BackgroundQueue {
  private readonly waiting: { key: string; run: () => void }[] = [];
  private readonly jobs = new Map<string, { group: string; done: Promise<void> }>();
  private running = 0;

  constructor(private readonly concurrency: number) {}

  /** Jobs queued or running. */
  get size(): number {
    return this.jobs.size;
  }

  /** Whether a job under key is queued or running. */
  has(key: string): boolean {
    return this.jobs.has(key);
  }

  /** Queues fn under key (one job per key: a second add returns the first's promise). */
  add(key: string, group: string, fn: () => Promise<void>): Promise<void> {
    const known = this.jobs.get(key);
    if (known) return known.done;
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    this.jobs.set(key, { group, done });
    this.waiting.push({
      key,
      run: () => {
        this.running++;
        // started after the I/O of this turn of the loop: the RPC that queued the job answers
        // first (its response is written in this turn), then its slow cleanup begins
        setImmediate(() => {
          fn()
            .catch(() => undefined)
            .finally(() => {
              this.running--;
              this.jobs.delete(key);
              release();
              this.next();
            });
        });
      },
    });
    this.next();
    return done;
  }

  /** Resolves when the job under key (if any) has ended. */
  wait(key: string): Promise<void> {
    return this.jobs.get(key)?.done ?? Promise.resolve();
  }

  /** Resolves when every job of the group queued so far has ended. */
  async settled(group: string): Promise<void> {
    await Promise.all([...this.jobs.values()].filter((j) => j.group === group).map((j) => j.done));
  }

  /** Resolves when every job queued so far has ended. */
  async drain(): Promise<void> {
    await Promise.all([...this.jobs.values()].map((j) => j.done));
  }

  private next(): void {
    while (this.running < this.concurrency && this.waiting.length) this.waiting.shift()!.run();
  }
}
