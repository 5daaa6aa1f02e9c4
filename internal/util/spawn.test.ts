// The native spawner's guarantees, each checked on real processes: output, exit codes and signals,
// errors for a missing binary or cwd, no leaked fds, a clean environment and signal state, its own
// process group or session, reaping (no zombies), and watching a process that is not our child.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { childRunning, nativeSpawner, spawnProcess, watchProcessExit, type Proc } from './spawn';

function collect(p: Proc): Promise<{ out: string; err: string; code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code: number | null, signal: string | null) => resolve({ out, err, code, signal }));
  });
}

function zombiesOf(ppid: number): number[] {
  const found: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' && Number(f[1]) === ppid) found.push(Number(d));
    } catch {
      // gone
    }
  }
  return found;
}

test('the addon is used (it is built before the unit tests)', () => {
  expect(nativeSpawner()).toBe(true);
});

test('stdout, stderr and the exit code', async () => {
  const r = await collect(spawnProcess('/bin/sh', ['-c', 'echo out; echo err >&2; exit 7']));
  expect(r).toEqual({ out: 'out\n', err: 'err\n', code: 7, signal: null });
});

test('a bare command name is found in PATH; stdin is written', async () => {
  const p = spawnProcess('cat', [], { stdio: ['pipe', 'pipe', 'pipe'] });
  p.stdin?.end('hello');
  expect((await collect(p)).out).toBe('hello');
});

test('a killed child reports its signal, and is reaped', async () => {
  const p = spawnProcess('/bin/sleep', ['30']);
  await new Promise((r) => p.once('spawn', r));
  expect(childRunning(p)).toBe(true);
  p.kill('SIGKILL');
  const r = await collect(p);
  expect(r.code).toBeNull();
  expect(r.signal).toBe('SIGKILL');
  expect(childRunning(p)).toBe(false);
  expect(zombiesOf(process.pid)).not.toContain(p.pid);
});

test('a missing binary and a missing cwd are errors, with the code', async () => {
  const e1 = await collect(spawnProcess('/nonexistent/bin', [])).catch((e: NodeJS.ErrnoException) => e);
  expect((e1 as NodeJS.ErrnoException).code).toBe('ENOENT');
  const e2 = await collect(spawnProcess('/bin/true', [], { cwd: '/nonexistent-dir' })).catch(
    (e: NodeJS.ErrnoException) => e,
  );
  expect((e2 as NodeJS.ErrnoException).code).toBe('ENOENT');
});

test('the child gets only the fds it was given, and only the given env', async () => {
  // Open an fd without O_CLOEXEC in the parent: it must still not reach the child.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spawn-'));
  const fd = fs.openSync(path.join(tmp, 'f'), 'w');
  try {
    const r = await collect(
      spawnProcess('/bin/sh', ['-c', 'ls /proc/self/fd; echo ---; env'], { env: { A: 'b' } }),
    );
    const [fds, env] = r.out.split('---\n');
    // 0-2 and the fd ls uses for /proc/self/fd
    expect(
      fds
        .trim()
        .split('\n')
        .map(Number)
        .filter((n) => n > 3),
    ).toEqual([]);
    expect(
      env
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('PWD=') && !l.startsWith('SHLVL=') && !l.startsWith('_=')),
    ).toEqual(['A=b']);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('signals are at their defaults and unblocked in the child (Node ignores SIGPIPE)', async () => {
  const r = await collect(spawnProcess('/bin/sh', ['-c', 'grep -E "^Sig(Blk|Ign)" /proc/self/status']));
  expect(r.out).toContain('SigBlk:\t0000000000000000');
  // bits 1-31 (the classic signals); glibc keeps its two internal RT signals for itself
  const ign = BigInt('0x' + /SigIgn:\t([0-9a-f]+)/.exec(r.out)![1]);
  expect(ign & 0x7fffffffn).toBe(0n);
});

test('own process group by default, own session when detached', async () => {
  const q = (detached: boolean) =>
    collect(spawnProcess('/bin/sh', ['-c', 'cut -d" " -f5,6 /proc/self/stat; echo $$'], { detached }));
  const a = (await q(false)).out.trim().split('\n');
  // cut is a child of sh: its pgrp is sh's pid
  const [pgrp, session] = a[0].split(' ').map(Number);
  expect(pgrp).toBe(Number(a[1]));
  expect(session).toBe(Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[3]));
  const b = (await q(true)).out.trim().split('\n');
  const [pgrp2, session2] = b[0].split(' ').map(Number);
  expect(pgrp2).toBe(Number(b[1]));
  expect(session2).toBe(Number(b[1]));
});

test('an extra pipe on fd 3 reaches the parent', async () => {
  const p = spawnProcess('/bin/sh', ['-c', 'echo sync >&3'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  let got = '';
  (p.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (got += c.toString()));
  await collect(p);
  expect(got).toBe('sync\n');
});

test('watching a process that is not our child reports its end', async () => {
  // sh forks a grandchild (not ours), prints its pid and exits; the grandchild sleeps briefly.
  const r = await collect(spawnProcess('/bin/sh', ['-c', 'sleep 0.3 & echo $!']));
  const pid = Number(r.out.trim());
  const gone = new Promise<void>((resolve) => expect(watchProcessExit(pid, resolve)).toBe(true));
  await gone;
  // ended: a zombie until init reaps it, or gone
  const state = fs.existsSync(`/proc/${pid}`)
    ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0]
    : 'gone';
  expect(['Z', 'gone']).toContain(state);
});

test('many concurrent spawns leave no zombie', async () => {
  const runs = await Promise.all(
    Array.from({ length: 50 }, (_, i) => collect(spawnProcess('/bin/echo', [String(i)]))),
  );
  expect(runs.map((r) => r.out.trim())).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  expect(zombiesOf(process.pid)).toEqual([]);
});

test("'close' comes after the exit even when the parent never ends the child's stdin", async () => {
  const p = spawnProcess('/bin/sh', ['-c', 'echo bye'], { stdio: ['pipe', 'pipe', 'pipe'] });
  expect((await collect(p)).out).toBe('bye\n');
  expect(p.stdin?.destroyed).toBe(true);
});

test('a second load of the addon (another module registry) takes over exit delivery', async () => {
  let again: typeof import('./spawn') | undefined;
  jest.isolateModules(() => {
    again = jest.requireActual<typeof import('./spawn')>('./spawn');
  });
  expect(again!.nativeSpawner()).toBe(true);
  expect((await collect(again!.spawnProcess('/bin/sh', ['-c', 'echo again']))).out).toBe('again\n');
});
