// The OCI runtime driver against the real conmon 2.1 + runc 1.1 on this machine, with bundles
// built here from busybox-static (the real spec builder lives in internal/oci and is tested there).
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OciRuntime, isRuncNotFound } from '../../internal/runtime';
import type { ExitInfo } from '../../internal/runtime';
import { silentLogger } from '../../internal/log';

const RUNC = '/usr/sbin/runc';
const CONMON = '/usr/bin/conmon';
const BUSYBOX = '/usr/bin/busybox';
const APPLETS = [
  'sh',
  'setsid',
  'sleep',
  'echo',
  'printf',
  'cat',
  'yes',
  'head',
  'tail',
  'dd',
  'ps',
  'true',
  'ls',
  'wc',
];

const MiB = 1024 * 1024;

let tmp: string;
let rootfs: string;
let rt: OciRuntime;
let cgroupParent: string;
const created: string[] = [];

interface SpecOpts {
  memoryLimit?: number;
  terminal?: boolean;
}

async function makeRootfs(dir: string): Promise<void> {
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc'])
    await fsp.mkdir(path.join(dir, d), { recursive: true });
  await fsp.copyFile(BUSYBOX, path.join(dir, 'bin/busybox'));
  await fsp.chmod(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) await fsp.symlink('busybox', path.join(dir, 'bin', a));
}

function spec(id: string, args: string[], o: SpecOpts = {}): object {
  const caps = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID'];
  const resources: Record<string, unknown> = { devices: [{ allow: false, access: 'rwm' }] };
  if (o.memoryLimit) resources.memory = { limit: o.memoryLimit, swap: o.memoryLimit };
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: o.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/bin', 'HOME=/'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    // Every bundle shares the one read-only rootfs; /tmp is a tmpfs per container.
    root: { path: rootfs, readonly: true },
    hostname: 'rt',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
      },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      cgroupsPath: `${cgroupParent}/${id}`,
      resources,
      maskedPaths: ['/proc/kcore', '/proc/keys', '/sys/firmware'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

async function bundle(
  id: string,
  args: string[],
  o: SpecOpts = {},
): Promise<{ bundle: string; logPath: string }> {
  const b = path.join(tmp, 'bundles', id);
  await fsp.mkdir(b, { recursive: true });
  await fsp.writeFile(path.join(b, 'config.json'), JSON.stringify(spec(id, args, o)));
  return { bundle: b, logPath: path.join(tmp, 'logs', `${id}.log`) };
}

function newId(): string {
  const id = `rt${randomBytes(6).toString('hex')}`;
  created.push(id);
  return id;
}

async function run(args: string[], o: SpecOpts = {}): Promise<{ id: string; logPath: string; pid: number }> {
  const id = newId();
  const b = await bundle(id, args, o);
  const res = await rt.create({ id, ...b });
  await rt.start(id);
  return { id, logPath: b.logPath, pid: res.pid };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Pids whose command line contains `needle`. */
function procsWith(needle: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) found.push(Number(d));
    } catch {
      // gone
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Leaf and parent cgroup dirs runc made for our cgroupsPath, in every hierarchy. */
function removeCgroups(): void {
  const rel = cgroupParent.replace(/^\//, '');
  for (const ctrl of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', ctrl, rel);
    if (!existsSync(dir)) continue;
    for (const child of readdirSync(dir, { withFileTypes: true })) {
      if (child.isDirectory()) rmdirSync(path.join(dir, child.name));
    }
    rmdirSync(dir);
  }
}

function leftoverCgroups(): string[] {
  const rel = cgroupParent.replace(/^\//, '');
  const found: string[] = [];
  for (const ctrl of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', ctrl, rel);
    if (!existsSync(dir)) continue;
    for (const child of readdirSync(dir, { withFileTypes: true }))
      if (child.isDirectory()) found.push(`${ctrl}/${child.name}`);
  }
  return found;
}

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-rt-'));
  rootfs = path.join(tmp, 'rootfs');
  cgroupParent = `/berth-rt-test-${path.basename(tmp).slice(-6)}`;
  await makeRootfs(rootfs);
  rt = new OciRuntime({
    conmonPath: CONMON,
    runtimePath: RUNC,
    runtimeRoot: path.join(tmp, 'runc'),
    stateDir: path.join(tmp, 's'),
    log: silentLogger(),
  });
  await rt.init();
});

afterAll(async () => {
  if (rt) {
    for (const id of created) await rt.delete(id, true).catch(() => undefined);
    rt.close();
  }
  if (cgroupParent) removeCgroups();
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

describe('create, start, logs, exit', () => {
  test('runs a container: CRI log lines and the exit code from the exit file', async () => {
    const id = newId();
    const b = await bundle(id, ['sh', '-c', 'echo hello; echo oops >&2; printf part; sleep 0.2; exit 3']);
    const res = await rt.create({ id, ...b });
    expect(res.pid).toBeGreaterThan(0);
    expect(res.conmonPid).toBeGreaterThan(0);
    expect((await rt.state(id))?.status).toBe('created');
    expect(await rt.exitInfo(id)).toBeUndefined();
    // conmon outlives the process that spawned it and is not our child
    expect(alive(res.conmonPid)).toBe(true);
    expect(existsSync(rt.attachSocketPath(id))).toBe(true);

    const before = Date.now();
    await rt.start(id);
    const exit = await rt.waitExit(id);
    expect(exit.exitCode).toBe(3);
    expect(exit.oomKilled).toBe(false);
    expect(exit.finishedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(exit.finishedAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect((await rt.state(id))?.status).toBe('stopped');

    const lines = (await fsp.readFile(b.logPath, 'utf8')).split('\n').filter(Boolean);
    const ts = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d+(Z|[+-]\\d\\d:\\d\\d)';
    expect(lines).toHaveLength(3);
    expect(lines.find((l) => l.endsWith(' hello'))).toMatch(new RegExp(`^${ts} stdout F hello$`));
    expect(lines.find((l) => l.endsWith(' oops'))).toMatch(new RegExp(`^${ts} stderr F oops$`));
    expect(lines.find((l) => l.endsWith(' part'))).toMatch(new RegExp(`^${ts} stdout P part$`));

    // stop of an exited container just reports its exit
    expect((await rt.stop(id, 'SIGTERM', 1)).exitCode).toBe(3);

    await rt.delete(id);
    expect(await rt.state(id)).toBeUndefined();
    expect(await rt.exitInfo(id)).toBeUndefined();
    expect(existsSync(rt.paths.persistDir(id))).toBe(false);
    expect(leftoverCgroups().filter((c) => c.endsWith(`/${id}`))).toEqual([]);
    // idempotent
    await rt.delete(id);
    await rt.delete(id, true);
  });

  test("a failed runc create surfaces runc's message and leaves nothing behind", async () => {
    const id = newId();
    const b = await bundle(id, ['/no/such/binary']);
    await expect(rt.create({ id, ...b })).rejects.toThrow(/no\/such\/binary/);
    expect(await rt.state(id)).toBeUndefined();
    expect((await rt.list()).map((s) => s.id)).not.toContain(id);
    expect(existsSync(rt.paths.conmonPidFile(id))).toBe(false);
    expect(existsSync(rt.paths.exitFile(id))).toBe(false);
    expect(existsSync(rt.paths.persistDir(id))).toBe(false);
  });

  test('stdin: with a pipe held open by conmon cat keeps running; without, it reads EOF', async () => {
    const withStdin = newId();
    const b1 = await bundle(withStdin, ['cat']);
    await rt.create({ id: withStdin, ...b1, stdin: true });
    await rt.start(withStdin);
    const without = newId();
    const b2 = await bundle(without, ['cat']);
    await rt.create({ id: without, ...b2 });
    await rt.start(without);
    expect((await rt.waitExit(without)).exitCode).toBe(0);
    expect((await rt.state(withStdin))?.status).toBe('running');
    expect((await rt.stop(withStdin, 'SIGKILL', 0)).exitCode).toBe(137);
    await rt.delete(withStdin);
    await rt.delete(without);
  });

  test('tty: the process gets a terminal and its output is logged', async () => {
    const id = newId();
    const b = await bundle(id, ['ls', '-l', '/proc/self/fd/1'], { terminal: true });
    await rt.create({ id, ...b, tty: true });
    await rt.start(id);
    expect((await rt.waitExit(id)).exitCode).toBe(0);
    expect(await fsp.readFile(b.logPath, 'utf8')).toMatch(/ stdout F .*-> \/dev\/pts\/\d+/);
    await rt.delete(id);
  });

  test('a missing conmon binary is a clear error', async () => {
    const broken = new OciRuntime({
      conmonPath: '/no/conmon',
      runtimePath: RUNC,
      runtimeRoot: path.join(tmp, 'runc'),
      stateDir: path.join(tmp, 's'),
      log: silentLogger(),
    });
    const id = newId();
    const b = await bundle(id, ['true']);
    await expect(broken.create({ id, ...b })).rejects.toThrow(/cannot run \/no\/conmon/);
    expect(existsSync(rt.paths.persistDir(id))).toBe(false);
    broken.close();
  });

  test('invalid ids and unknown containers', async () => {
    await expect(rt.start('../etc')).rejects.toThrow(/invalid container id/);
    const err: unknown = await rt.start('nosuchcontainer').catch((e: unknown) => e);
    expect(isRuncNotFound(err)).toBe(true);
    expect(await rt.state('nosuchcontainer')).toBeUndefined();
    await expect(rt.delete('nosuchcontainer', true)).resolves.toBeUndefined();
  });
});

describe('stop', () => {
  test('SIGTERM honoured', async () => {
    const { id } = await run(['sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.05; done']);
    await waitFor('running', async () => (await rt.state(id))?.status === 'running');
    const t0 = Date.now();
    const exit = await rt.stop(id, 'SIGTERM', 10);
    expect(exit.exitCode).toBe(7);
    expect(Date.now() - t0).toBeLessThan(3000);
    await rt.delete(id);
  });

  test('SIGKILL after the timeout when SIGTERM is ignored', async () => {
    const { id } = await run(['sh', '-c', "trap '' TERM; while true; do sleep 0.05; done"]);
    await waitFor('running', async () => (await rt.state(id))?.status === 'running');
    const t0 = Date.now();
    const exit = await rt.stop(id, 15, 1);
    const took = Date.now() - t0;
    expect(exit.exitCode).toBe(137);
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(5000);
    await rt.delete(id);
  });

  test('a created container that never started can be stopped and removed', async () => {
    const id = newId();
    const b = await bundle(id, ['sleep', '100']);
    await rt.create({ id, ...b });
    const exit = await rt.stop(id, 'SIGTERM', 0);
    expect(exit.exitCode).toBe(137);
    await rt.delete(id);
    expect(await rt.state(id)).toBeUndefined();
  });

  test('kill --all reaches every process of the container', async () => {
    const { id } = await run(['sh', '-c', "trap '' TERM; sleep 100 & sleep 100 & wait"]);
    await waitFor('running', async () => (await rt.state(id))?.status === 'running');
    await rt.kill(id, 'KILL', true);
    expect((await rt.waitExit(id)).exitCode).toBe(137);
    await expect(rt.kill(id, 'TERM')).rejects.toThrow(/not running/);
    await expect(rt.kill(id, 'NOPE;')).rejects.toThrow(/invalid signal/);
    await rt.delete(id);
  });

  test('a container whose conmon died can still be stopped; its exit is reported unknown', async () => {
    const { id } = await run(['sleep', '100']);
    const conmonPid = await rt.conmonPid(id);
    expect(conmonPid).toBeGreaterThan(0);
    process.kill(conmonPid!, 'SIGKILL');
    await waitFor('conmon gone', async () => !alive(conmonPid!));
    expect(await rt.conmonPid(id)).toBeUndefined();
    expect((await rt.state(id))?.status).toBe('running');
    const exit = await rt.stop(id, 'SIGTERM', 1);
    expect(exit).toMatchObject({ exitCode: 255, unknown: true });
    expect((await rt.state(id))?.status).toBe('stopped');
    await rt.delete(id);
  });

  test('waitExit can be aborted', async () => {
    const { id } = await run(['sleep', '100']);
    const ac = new AbortController();
    const p = rt.waitExit(id, ac.signal);
    ac.abort(new Error('gave up'));
    await expect(p).rejects.toThrow('gave up');
    await rt.delete(id, true);
  });
});

describe('execSync', () => {
  let id: string;
  beforeAll(async () => {
    ({ id } = await run(['sleep', '3600']));
  });
  afterAll(async () => {
    await rt.delete(id, true);
  });

  test('output and exit code', async () => {
    const r = await rt.execSync(id, ['sh', '-c', 'echo out; echo err >&2; hostname >/dev/null; exit 5'], {
      timeoutSec: 10,
    });
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr.toString()).toBe('err\n');
    expect(r.exitCode).toBe(5);
    expect(r.timedOut).toBe(false);
    const ok = await rt.execSync(id, ['echo', 'fine']);
    expect(ok).toMatchObject({ exitCode: 0, timedOut: false });
    expect(ok.stdout.toString()).toBe('fine\n');
  });

  test("runs with the container's env and cwd unless overridden", async () => {
    const r = await rt.execSync(id, ['sh', '-c', 'echo $HOME:$FOO:$(pwd)'], { timeoutSec: 10 });
    expect(r.stdout.toString()).toBe('/::/\n');
    const o = await rt.execSync(id, ['sh', '-c', 'echo $FOO:$(pwd)'], {
      timeoutSec: 10,
      env: ['FOO=bar'],
      cwd: '/tmp',
    });
    expect(o.stdout.toString()).toBe('bar:/tmp\n');
  });

  test('timeout kills the command and its children', async () => {
    const t0 = Date.now();
    const r = await rt.execSync(id, ['sh', '-c', 'echo started; sleep 101 & sleep 102'], { timeoutSec: 1 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(-1);
    expect(r.stdout.toString()).toBe('started\n');
    expect(Date.now() - t0).toBeLessThan(4000);
    await waitFor('exec children gone', async () => {
      const ps = (await rt.execSync(id, ['ps', '-o', 'args'], { timeoutSec: 10 })).stdout.toString();
      expect(ps).toMatch(/sleep 3600/); // ps works and sees the container's processes
      return !/sleep 10[12]/.test(ps);
    });
  });

  test('timeout returns on time even when a child escaped into its own session', async () => {
    const t0 = Date.now();
    const r = await rt.execSync(id, ['sh', '-c', 'setsid sleep 103 & sleep 104'], { timeoutSec: 1 });
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(6000);
  });

  test('huge output is capped and drained', async () => {
    const total = 200 * MiB;
    const r = await rt.execSync(id, ['sh', '-c', `yes | head -c ${total}; echo done >&2`], {
      timeoutSec: 60,
      maxOutputBytes: MiB,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBe(MiB);
    expect(r.stdout.subarray(0, 4).toString()).toBe('y\ny\n');
    expect(r.stdoutTruncated).toBe(total - MiB);
    expect(r.stderr.toString()).toBe('done\n');
  });

  test('a command that cannot start is an error, not an exit code', async () => {
    await expect(rt.execSync(id, ['/no/such/cmd'], { timeoutSec: 10 })).rejects.toThrow(/no\/such\/cmd/);
  });

  /**
   * A runtime whose `exec` starts `delay` seconds late, or reports the command's end `after`
   * seconds late (a busy node's runc), over the same containers.
   */
  async function slowRuntime(delay: number, execStartTimeoutMs?: number, after = 0): Promise<OciRuntime> {
    const dir = await fsp.mkdtemp(path.join(tmp, 'slow-'));
    const wrapper = path.join(dir, 'runc');
    await fsp.writeFile(
      wrapper,
      `#!/bin/sh\ncase " $* " in *" exec "*) sleep ${delay};; *) exec ${RUNC} "$@";; esac\n` +
        `${RUNC} "$@"\nrc=$?\nsleep ${after}\nexit $rc\n`,
      { mode: 0o755 },
    );
    const slow = new OciRuntime({
      conmonPath: CONMON,
      runtimePath: wrapper,
      runtimeRoot: path.join(tmp, 'runc'),
      stateDir: path.join(dir, 's'),
      log: silentLogger(),
      execStartTimeoutMs,
    });
    await slow.init();
    return slow;
  }

  test("the timeout counts from the command's start: a slow runtime start-up does not eat it", async () => {
    const slow = await slowRuntime(1.5);
    try {
      const t0 = Date.now();
      const r = await slow.execSync(id, ['sh', '-c', 'sleep 0.5; echo done'], { timeoutSec: 1 });
      expect(Date.now() - t0).toBeGreaterThan(1500);
      expect(r).toMatchObject({ timedOut: false, exitCode: 0 });
      expect(r.stdout.toString()).toBe('done\n');
    } finally {
      slow.close();
    }
  });

  test('a command that ended in time is not timed out while the runtime is slow to report it', async () => {
    const slow = await slowRuntime(0, undefined, 1.5);
    try {
      const r = await slow.execSync(id, ['sh', '-c', 'echo quick'], { timeoutSec: 1 });
      expect(r).toMatchObject({ timedOut: false, exitCode: 0 });
      expect(r.stdout.toString()).toBe('quick\n');
    } finally {
      slow.close();
    }
  });

  test('a runtime that cannot start the command in time is an UNAVAILABLE error and leaves nothing', async () => {
    const slow = await slowRuntime(3, 500);
    try {
      await expect(slow.execSync(id, ['sleep', '105'], { timeoutSec: 1 })).rejects.toMatchObject({
        code: 14, // UNAVAILABLE
      });
      await waitFor('exec gone', async () => {
        const ps = (await rt.execSync(id, ['ps', '-o', 'args'], { timeoutSec: 10 })).stdout.toString();
        return !/sleep 105/.test(ps) && procsWith(path.join(tmp, 'slow-')).length === 0;
      });
    } finally {
      slow.close();
    }
  });

  test('an exit that arrived during an event-loop stall is not reported as a timeout', async () => {
    const execDir = path.join(tmp, 's', 'exec');
    const p = rt.execSync(id, ['sh', '-c', 'sleep 0.3; echo finished'], { timeoutSec: 1 });
    // Once runc has reported the command running (its pid file), stall the loop past the
    // timeout: the command ends meanwhile, and the timer fires before its exit is handled.
    await waitFor('pid file', async () => readdirSync(execDir).some((f) => f.endsWith('.pid')), 5000);
    await new Promise((r) => setTimeout(r, 20));
    // Stalled from the check phase: the next loop turn runs due timers before polling for I/O.
    await new Promise((r) => setImmediate(r));
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      // busy: the event loop is blocked
    }
    const r = await p;
    expect(r).toMatchObject({ timedOut: false, exitCode: 0 });
    expect(r.stdout.toString()).toBe('finished\n');
  });

  test('exec into a stopped container fails', async () => {
    const { id: done } = await run(['true']);
    await rt.waitExit(done);
    await expect(rt.execSync(done, ['true'], { timeoutSec: 5 })).rejects.toThrow(/runc exec/);
    await rt.delete(done);
  });
});

describe('logs, update, pause', () => {
  test('reopenLog: after a rename, new lines go to a new file', async () => {
    const { id, logPath } = await run([
      'sh',
      '-c',
      'i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done',
    ]);
    await waitFor('first lines', async () =>
      (await fsp.readFile(logPath, 'utf8').catch(() => '')).includes('line3'),
    );
    const rotated = `${logPath}.1`;
    await fsp.rename(logPath, rotated);
    await rt.reopenLog(id, logPath);
    const firstNew = await waitFor('a line in the new file', async () => {
      const m = /stdout F line(\d+)/.exec(await fsp.readFile(logPath, 'utf8'));
      return m ? Number(m[1]) : undefined;
    });
    await new Promise((r) => setTimeout(r, 200));
    const old = await fsp.readFile(rotated, 'utf8');
    const oldNums = [...old.matchAll(/line(\d+)/g)].map((m) => Number(m[1]));
    // the rotated file stopped where the new one starts
    expect(Math.max(...oldNums)).toBeLessThan(firstNew);
    expect(old).toMatch(/stdout F line0\n/);
    await rt.stop(id, 'SIGKILL', 0);
    await rt.delete(id);
  });

  test('update, pause and resume', async () => {
    const { id } = await run(['sleep', '3600'], { memoryLimit: 64 * MiB });
    await rt.update(id, { memory: { limit: 32 * MiB, swap: 32 * MiB } });
    const limit = await fsp.readFile(
      path.join('/sys/fs/cgroup/memory', cgroupParent, id, 'memory.limit_in_bytes'),
      'utf8',
    );
    expect(Number(limit)).toBe(32 * MiB);
    await rt.pause(id);
    expect((await rt.state(id))?.status).toBe('paused');
    await rt.resume(id);
    expect((await rt.state(id))?.status).toBe('running');
    const listed = (await rt.list()).find((s) => s.id === id);
    expect(listed?.status).toBe('running');
    // a paused container can still be stopped
    await rt.pause(id);
    expect((await rt.stop(id, 'SIGTERM', 0)).exitCode).toBe(137);
    await rt.delete(id);
    expect(await rt.state(id)).toBeUndefined();
  });
});

describe('OOM', () => {
  test('a container that exceeds its memory limit is reported OOM killed', async () => {
    // busybox tail keeps a line it never finishes: /dev/zero has no newline, so it grows without end
    const { id } = await run(['tail', '/dev/zero'], { memoryLimit: 16 * MiB });
    const exit = await rt.waitExit(id);
    expect(exit.exitCode).toBe(137);
    expect(exit.oomKilled).toBe(true);
    await rt.delete(id);
  });
});

describe('the daemon goes away', () => {
  /** The built runtime driver (npm run build), which a plain node child can load. */
  const distDir = path.resolve(__dirname, '../..', 'dist');

  test('a container created by a process that is then SIGKILLed keeps running and its exit is recorded', async () => {
    const jsDir = distDir;
    const id = newId();
    const b = await bundle(id, ['sh', '-c', 'echo before; sleep 1.5; echo after; exit 9']);
    const script = `
      const { OciRuntime } = require(${JSON.stringify(path.join(jsDir, 'internal/runtime/index.js'))});
      const { silentLogger } = require(${JSON.stringify(path.join(jsDir, 'internal/log.js'))});
      (async () => {
        const opts = ${JSON.stringify({ conmonPath: CONMON, runtimePath: RUNC, runtimeRoot: path.join(tmp, 'runc'), stateDir: path.join(tmp, 's') })};
        const rt = new OciRuntime({ ...opts, log: silentLogger() });
        await rt.init();
        const res = await rt.create({ id: ${JSON.stringify(id)}, bundle: ${JSON.stringify(b.bundle)}, logPath: ${JSON.stringify(b.logPath)} });
        await rt.start(${JSON.stringify(id)});
        process.stdout.write(JSON.stringify(res) + '\\n', () => process.kill(process.pid, 'SIGKILL'));
      })().catch((e) => { console.error(e); process.exit(2); });
    `;
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    expect(err).toBe('');
    expect(signal).toBe('SIGKILL');
    const res = JSON.parse(out) as { pid: number; conmonPid: number };

    // the creator is gone; conmon and the container are not
    expect(alive(res.conmonPid)).toBe(true);
    expect(await rt.conmonPid(id)).toBe(res.conmonPid);
    expect((await rt.state(id))?.status).toBe('running');
    const exit: ExitInfo = await rt.waitExit(id);
    expect(exit.exitCode).toBe(9);
    const log = await fsp.readFile(b.logPath, 'utf8');
    expect(log).toMatch(/stdout F before\n/);
    expect(log).toMatch(/stdout F after\n/);
    await waitFor('conmon exit', async () => !alive(res.conmonPid));
    await rt.delete(id);
  });
});

describe('cleanup', () => {
  test('nothing left: runc state, conmon processes, cgroups', async () => {
    const ours = (await rt.list()).filter((s) => created.includes(s.id));
    expect(ours.map((s) => s.id)).toEqual([]);
    expect(leftoverCgroups()).toEqual([]);
    const conmons = spawnSync('sh', [
      '-c',
      `ps -eo args | grep -c '[c]onmon.*${path.basename(tmp)}' || true`,
    ]);
    expect(conmons.stdout.toString().trim()).toBe('0');
  });
});
