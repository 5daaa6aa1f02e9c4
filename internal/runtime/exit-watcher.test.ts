import { promises as fsp, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../log';
import { spawnProcess } from '../util/spawn';
import { ExitWatcher } from './exit-watcher';
import { FileEvents } from './file-events';

describe('ExitWatcher', () => {
  let dir: string;
  let events: FileEvents;
  let w: ExitWatcher;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-exitw-'));
    events = new FileEvents(dir, silentLogger());
    // A sweep period far beyond the tests: resolving fast proves the event path works.
    w = new ExitWatcher({
      events,
      log: silentLogger(),
      sweepMs: 600_000,
      check: async (id) => existsSync(path.join(dir, id)),
    });
  });
  afterEach(async () => {
    w.close();
    events.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('resolves every waiter of an id when its file appears (an event, no sweep), others keep waiting', async () => {
    let otherDone = false;
    const other = w.wait('b').then(() => (otherDone = true));
    const both = Promise.all([w.wait('a'), w.wait('a')]);
    setTimeout(() => void fsp.writeFile(path.join(dir, 'a'), '0'), 50);
    await both;
    expect(otherDone).toBe(false);
    expect(w.stats.sweeps).toBe(0);
    expect(w.stats.eventChecks).toBeGreaterThan(0);
    await fsp.writeFile(path.join(dir, 'b'), '1');
    await other;
  });

  test('a file that is already there resolves at once', async () => {
    await fsp.writeFile(path.join(dir, 'c'), '0');
    await w.wait('c');
  });

  test('nothing is read between events: an idle waiter costs no checks', async () => {
    let checks = 0;
    const idle = new ExitWatcher({
      events,
      log: silentLogger(),
      sweepMs: 600_000,
      check: async () => {
        checks++;
        return false;
      },
    });
    const ac = new AbortController();
    const p = idle.wait('idle', ac.signal).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    expect(checks).toBe(1); // the one check when the wait began
    ac.abort();
    await p;
    idle.close();
  });

  test('a missed event is caught by the safety sweep', async () => {
    // Events of another dir: the file written here produces no event for this watcher.
    const other = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-exitw-other-'));
    const deaf = new FileEvents(other, silentLogger());
    const sw = new ExitWatcher({
      events: deaf,
      log: silentLogger(),
      sweepMs: 300,
      check: async (id) => existsSync(path.join(dir, id)),
    });
    try {
      const p = sw.wait('missed');
      await fsp.writeFile(path.join(dir, 'missed'), '0');
      await p;
      expect(sw.stats.sweeps).toBeGreaterThan(0);
      expect(sw.stats.eventChecks).toBe(0);
    } finally {
      sw.close();
      deaf.close();
      await fsp.rm(other, { recursive: true, force: true });
    }
  });

  test('the death of the monitor process (no file written) triggers a check', async () => {
    const child = spawnProcess('/bin/sleep', ['0.3'], { stdio: ['ignore', 'ignore', 'ignore'] });
    await new Promise((r) => child.once('spawn', r));
    const mw = new ExitWatcher({
      events,
      log: silentLogger(),
      sweepMs: 600_000,
      monitorPid: async () => child.pid,
      // ended: gone, or a zombie its parent has not reaped yet
      check: async () => {
        const stat = await fsp.readFile(`/proc/${child.pid}/stat`, 'utf8').catch(() => '');
        return child.exitCode !== null || stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')));
      },
    });
    try {
      await mw.wait('monitored');
      expect(mw.stats.sweeps).toBe(0);
    } finally {
      mw.close();
    }
  });

  test('abort rejects with the reason; a failing check rejects', async () => {
    const ac = new AbortController();
    const p = w.wait('d', ac.signal);
    ac.abort(new Error('stop waiting'));
    await expect(p).rejects.toThrow('stop waiting');
    const bad = new ExitWatcher({
      events,
      log: silentLogger(),
      check: async () => {
        throw new Error('broken');
      },
    });
    await expect(bad.wait('e')).rejects.toThrow('broken');
    bad.close();
  });
});
