// A directory of JSON records, one file per id, each written atomically. Used for pod and
// container records. load() skips (and moves aside) records it cannot parse, so one corrupt
// file never stops the daemon.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import { atomicWriteJson, cleanTempFiles, quarantine } from './fs';

export class RecordStore<T> {
  constructor(
    readonly dir: string,
    private readonly log: Logger,
    /** checks a parsed record's shape; return false to quarantine it */
    private readonly valid: (v: unknown) => v is T,
  ) {}

  private file(id: string): string {
    if (!/^[a-zA-Z0-9_.-]+$/.test(id)) throw new Error(`bad record id ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.json`);
  }

  async load(): Promise<Map<string, T>> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await cleanTempFiles(this.dir);
    const out = new Map<string, T>();
    for (const name of await fsp.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const f = path.join(this.dir, name);
      let value: unknown;
      try {
        value = JSON.parse(await fsp.readFile(f, 'utf8'));
      } catch (err) {
        value = err;
      }
      if (!this.valid(value)) {
        const moved = await quarantine(f);
        this.log.error('record cannot be read; moved aside', { file: f, movedTo: moved });
        continue;
      }
      out.set(name.slice(0, -5), value);
    }
    return out;
  }

  async put(id: string, rec: T): Promise<void> {
    await atomicWriteJson(this.file(id), rec);
  }

  async delete(id: string): Promise<void> {
    await fsp.rm(this.file(id), { force: true });
  }
}
