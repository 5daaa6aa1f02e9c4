import { promises as fsp, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../log';
import { ExitWatcher } from './exit-watcher';

describe('ExitWatcher', () => {
  let dir: string;
  let w: ExitWatcher;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-exitw-'));
    // A long poll interval: resolving fast proves the fs.watch path works.
    w = new ExitWatcher({
      dir,
      log: silentLogger(),
      pollMs: 60_000,
      check: async (id) => existsSync(path.join(dir, id)),
    });
  });
  afterEach(async () => {
    w.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('resolves every waiter of an id when its file appears, others keep waiting', async () => {
    let otherDone = false;
    const other = w.wait('b').then(() => (otherDone = true));
    const t0 = Date.now();
    const both = Promise.all([w.wait('a'), w.wait('a')]);
    setTimeout(() => void fsp.writeFile(path.join(dir, 'a'), '0'), 50);
    await both;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(otherDone).toBe(false);
    await fsp.writeFile(path.join(dir, 'b'), '1');
    await other;
  });

  test('a file that is already there resolves at once', async () => {
    await fsp.writeFile(path.join(dir, 'c'), '0');
    await w.wait('c');
  });

  test('abort rejects with the reason; a failing check rejects', async () => {
    const ac = new AbortController();
    const p = w.wait('d', ac.signal);
    ac.abort(new Error('stop waiting'));
    await expect(p).rejects.toThrow('stop waiting');
    const bad = new ExitWatcher({
      dir,
      log: silentLogger(),
      check: async () => {
        throw new Error('broken');
      },
    });
    await expect(bad.wait('e')).rejects.toThrow('broken');
    bad.close();
  });
});
