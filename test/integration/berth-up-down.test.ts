// scripts/berth-up.sh, local-registry.sh and berth-down.sh on this machine, every path in temp dirs
// (socket, state and root dirs, pid files, config and CNI dirs, link dir, registry port and data)
// and the lab bridge berthop0: a foreign listener on the registry's port is never used, and
// berth-down --purge after a running pod leaves nothing behind.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertBuilt, berthdNodeFlags, REPO_ROOT } from '../lab/berthd';
import { mountsUnder, unmount } from '../../internal/util/mount';

const BRIDGE = 'berthop0';
const SUBNET = '10.239.0.0/24';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function script(name: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn('bash', [path.join(REPO_ROOT, 'scripts', name), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a command, resolves with its exit code and output (never throws). */
function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function alive(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

function bridgeExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A TCP listener on a free 127.0.0.1 port that counts the connections it gets. */
async function foreignListener(): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  let n = 0;
  const srv = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return { port, connections: () => n, close: () => new Promise((r) => srv.close(() => r())) };
}

/** Every path berth-up and berth-down use, in fresh temp dirs. */
function tempEnv(): { env: Record<string, string>; dir: string; state: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-updown-'));
  // short: conmon's attach socket path lives under the state dir and must fit a unix socket address
  const state = path.join(fs.mkdtempSync('/run/bo-'), 's');
  const env = {
    BERTH_SKIP_DEPS: '1',
    BERTH_SKIP_BUILD: '1',
    BERTH_STATE_DIR: state,
    BERTH_ROOT_DIR: path.join(dir, 'root'),
    BERTH_LOG: path.join(dir, 'berthd.log'),
    BERTH_CONFIG_DIR: path.join(dir, 'etc', 'berth'),
    BERTH_CNI_CONF_DIR: path.join(dir, 'etc', 'cni', 'net.d'),
    BERTH_BRIDGE: BRIDGE,
    BERTH_SUBNET: SUBNET,
    BERTH_CNI_DATA_DIR: path.join(dir, 'cni-ipam'),
    BERTH_BIN_DIR: path.join(dir, 'bin'),
    BERTH_REGISTRY_DIR: path.join(dir, 'registry'),
    BERTH_REGISTRY_LOG: path.join(dir, 'registry.log'),
    BERTH_STOP_TIMEOUT: '20',
  };
  return { env, dir, state };
}

async function scrub(dir: string, state: string, pids: number[]): Promise<void> {
  // only after a failed test: what this test started and made, nothing else
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const m of [...(await mountsUnder(path.dirname(state))), ...(await mountsUnder(dir))])
    await unmount(m);
  if (bridgeExists(BRIDGE)) execFileSync('ip', ['link', 'del', BRIDGE]);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(path.dirname(state), { recursive: true, force: true });
}

beforeAll(() => assertBuilt());

describe('local-registry.sh', () => {
  it('never uses a registry port held by another program: picks a free one, or fails naming the holder', async () => {
    const { env, dir, state } = tempEnv();
    const foreign = await foreignListener();
    const pids: number[] = [];
    try {
      // An explicit port held by someone else: refuse, naming the holder (this jest process).
      const strict = await script('local-registry.sh', [], {
        ...env,
        BERTH_REGISTRY_PORT: String(foreign.port),
      });
      expect(strict.code).toBe(1);
      expect(strict.stderr).toContain(`port ${foreign.port} is already in use by pid ${process.pid} (node)`);
      expect(fs.existsSync(path.join(env.BERTH_REGISTRY_DIR, 'registry.pid'))).toBe(false);

      // The same port as a preference: another free port, its own registry, its pid reported.
      const r = await script('local-registry.sh', [], {
        ...env,
        BERTH_REGISTRY_PORT: String(foreign.port),
        BERTH_REGISTRY_PORT_STRICT: '0',
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`port ${foreign.port} is in use by pid ${process.pid} (node)`);
      const pid = Number(fs.readFileSync(path.join(env.BERTH_REGISTRY_DIR, 'registry.pid'), 'utf8'));
      pids.push(pid);
      expect(alive(pid)).toBe(true);
      const addr = fs.readFileSync(path.join(env.BERTH_REGISTRY_DIR, 'registry.addr'), 'utf8').trim();
      expect(addr).not.toBe(`127.0.0.1:${foreign.port}`);
      expect(r.stdout).toContain(`serving on http://${addr} (pid ${pid},`);
      // the images went into our registry, in our data dir, and nothing talked to the foreign one
      expect(foreign.connections()).toBe(0);
      const tags = await fetch(`http://${addr}/v2/library/busybox/tags/list`).then((x) => x.json());
      expect(tags).toEqual({ name: 'library/busybox', tags: ['latest'] });
      expect(fs.existsSync(path.join(env.BERTH_REGISTRY_DIR, 'data', 'docker', 'registry'))).toBe(true);
      const dropIn = fs.readFileSync(
        path.join(env.BERTH_CONFIG_DIR, 'config.d', '50-local-registry.json'),
        'utf8',
      );
      expect(dropIn).toContain(`http://${addr}`);

      // berth-down stops it by its pid file and removes the pid file
      const down = await script('berth-down.sh', [], env);
      expect(down.code).toBe(0);
      expect(down.stdout).toContain(`stopping the local registry (pid ${pid})`);
      expect(alive(pid)).toBe(false);
      expect(fs.existsSync(path.join(env.BERTH_REGISTRY_DIR, 'registry.pid'))).toBe(false);
    } finally {
      await foreign.close();
      await scrub(dir, state, pids);
    }
  });
});

describe('berth-up.sh and berth-down.sh --purge', () => {
  it('brings berthd up with berthctl on PATH, runs a pod, and --purge leaves nothing', async () => {
    const { env, dir, state } = tempEnv();
    const pids: number[] = [];
    try {
      const up = await script('berth-up.sh', [], env);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      const berthdPid = Number(fs.readFileSync(path.join(state, 'berthd.pid'), 'utf8'));
      const regPidFile = path.join(env.BERTH_REGISTRY_DIR, 'registry.pid');
      const regPid = Number(fs.readFileSync(regPidFile, 'utf8'));
      pids.push(berthdPid, regPid);
      expect(alive(berthdPid) && alive(regPid)).toBe(true);
      // run as a command: the node flags on berthd's #! line (its V8 heap sizing) apply
      const argv = fs.readFileSync(`/proc/${berthdPid}/cmdline`, 'utf8').split('\0');
      expect(argv.slice(1, 1 + berthdNodeFlags().length)).toEqual(berthdNodeFlags());
      const conflist = path.join(env.BERTH_CNI_CONF_DIR, '10-berth.conflist');
      expect(JSON.parse(fs.readFileSync(conflist, 'utf8')).plugins[1].bridge).toBe(BRIDGE);

      // berthctl from the link dir, as an operator types it (PATH), pulls through the mirror
      const berthctl = path.join(env.BERTH_BIN_DIR, 'berthctl');
      expect(fs.readlinkSync(berthctl)).toBe(path.join(REPO_ROOT, 'dist', 'cmd', 'berthctl', 'main.js'));
      const ctlEnv = {
        PATH: `${env.BERTH_BIN_DIR}:${process.env.PATH}`,
        CONTAINER_RUNTIME_ENDPOINT: `unix://${state}/berth.sock`,
      };
      const podFile = path.join(dir, 'pod.json');
      const ctrFile = path.join(dir, 'ctr.json');
      fs.writeFileSync(
        podFile,
        JSON.stringify({
          metadata: { name: 'updown', namespace: 'it', uid: `updown-${process.pid}`, attempt: 0 },
          log_directory: path.join(dir, 'pod-logs'),
          linux: {},
        }),
      );
      fs.writeFileSync(
        ctrFile,
        JSON.stringify({
          metadata: { name: 'sleeper', attempt: 0 },
          image: { image: 'docker.io/library/busybox:latest' },
          command: ['sleep', '3600'],
          log_path: 'sleeper/0.log',
          linux: {},
        }),
      );
      const r = await run('berthctl', ['run', ctrFile, podFile], ctlEnv);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const ps = await run('berthctl', ['ps', '-q'], ctlEnv);
      expect(ps.stdout.trim()).toBe(r.stdout.trim());
      expect(bridgeExists(BRIDGE)).toBe(true);
      expect((await mountsUnder(state)).length).toBeGreaterThan(0);

      const down = await script('berth-down.sh', ['--purge'], env);
      expect(down.code).toBe(0);
      expect(down.stdout).toContain('removing 1 pod(s)');
      // no process: berthd, the registry, and nothing (conmon, the container) under our dirs
      expect(alive(berthdPid)).toBe(false);
      expect(alive(regPid)).toBe(false);
      const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.includes(state) || l.includes(dir));
      expect(procs).toEqual([]);
      // no pid files, bridge, conflist, config, links, mounts, dirs
      expect(fs.existsSync(regPidFile)).toBe(false);
      expect(bridgeExists(BRIDGE)).toBe(false);
      expect(await mountsUnder(path.dirname(state))).toEqual([]);
      expect(await mountsUnder(dir)).toEqual([]);
      for (const p of [
        state,
        env.BERTH_ROOT_DIR,
        env.BERTH_CONFIG_DIR,
        env.BERTH_CNI_CONF_DIR,
        env.BERTH_CNI_DATA_DIR,
        env.BERTH_BIN_DIR,
        env.BERTH_REGISTRY_DIR,
      ]) {
        expect([p, fs.existsSync(p)]).toEqual([p, false]);
      }
    } finally {
      await scrub(dir, state, pids);
    }
  });
});

describe('berth-down.sh', () => {
  it('escalates to SIGKILL after BERTH_STOP_TIMEOUT, and never kills a process its pid file does not name', async () => {
    const { env, dir, state } = tempEnv();
    fs.mkdirSync(state, { recursive: true });
    // a "berthd" that ignores SIGTERM (its command line has berthd/main.js, as berthd's has)
    const fake = path.join(dir, 'berthd', 'main.js');
    fs.mkdirSync(path.dirname(fake));
    const ready = path.join(dir, 'ready');
    fs.writeFileSync(
      fake,
      `process.on('SIGTERM', () => undefined); require('fs').writeFileSync(${JSON.stringify(ready)}, '');` +
        ' setInterval(() => undefined, 1000);\n',
    );
    const p = spawn(process.execPath, [fake], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => p.on('exit', (_c, sig) => r(sig)));
    const pids = [p.pid!];
    try {
      // its SIGTERM handler is in place
      for (let i = 0; i < 300 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 100));
      fs.writeFileSync(path.join(state, 'berthd.pid'), String(p.pid));
      // the registry's pid file names a live process that is not a registry: this jest process
      fs.mkdirSync(env.BERTH_REGISTRY_DIR, { recursive: true });
      fs.writeFileSync(path.join(env.BERTH_REGISTRY_DIR, 'registry.pid'), String(process.pid));
      const down = await script('berth-down.sh', [], { ...env, BERTH_STOP_TIMEOUT: '1' });
      expect(down.code).toBe(0);
      expect(down.stdout).toContain(`stopping berthd (pid ${p.pid})`);
      expect(down.stderr).toContain(`berthd (pid ${p.pid}) still running after 1s; sending SIGKILL`);
      expect(await exited).toBe('SIGKILL');
      expect(down.stdout).toContain('the local registry is not running (stale pid file');
      expect(fs.existsSync(path.join(state, 'berthd.pid'))).toBe(false);
      expect(fs.existsSync(path.join(env.BERTH_REGISTRY_DIR, 'registry.pid'))).toBe(false);
    } finally {
      await scrub(dir, state, pids);
    }
  });
});

describe('install-deps.sh', () => {
  it('waits for the dpkg lock, saying who holds it, and gives up at its bound', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dpkglock-'));
    const lock = path.join(dir, 'lock-frontend');
    fs.writeFileSync(lock, '');
    const lib = path.join(REPO_ROOT, 'scripts', 'lib-dpkg-lock.sh');
    const holders: ReturnType<typeof spawn>[] = [];
    const hold = async (): Promise<number> => {
      const started = path.join(dir, `held-${holders.length}`);
      // a POSIX (fcntl) lock, as dpkg takes it, by one process
      const py = `import fcntl, time\nf = open(${JSON.stringify(lock)}, 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\nopen(${JSON.stringify(started)}, 'w').close()\ntime.sleep(600)\n`;
      const p = spawn('python3', ['-c', py], { stdio: 'ignore' });
      holders.push(p);
      for (let i = 0; i < 300 && !fs.existsSync(started); i++) await new Promise((r) => setTimeout(r, 100));
      return p.pid!;
    };
    try {
      // held for good: a message naming the holder, then failure at the bound (2 s)
      const pid = await hold();
      const gaveUp = await run('bash', ['-c', `. ${lib}; wait_dpkg_lock $((SECONDS + 2)); echo free`], {
        BERTH_DPKG_LOCKS: lock,
      });
      expect(gaveUp.code).toBe(1);
      expect(gaveUp.stdout).toContain(
        `install-deps: waiting for the dpkg lock: pid ${pid} (python3) holds ${lock}`,
      );
      expect(gaveUp.stderr).toContain('gave up waiting for the dpkg lock');
      expect(gaveUp.stdout).not.toContain('free');

      // released while it waits: it goes on
      const waiting = run('bash', ['-c', `. ${lib}; wait_dpkg_lock $((SECONDS + 120)); echo free`], {
        BERTH_DPKG_LOCKS: lock,
      });
      await new Promise((r) => setTimeout(r, 1500));
      holders[0]?.kill('SIGKILL');
      const w = await waiting;
      expect(w.code).toBe(0);
      expect(w.stdout).toContain('waiting for the dpkg lock');
      expect(w.stdout.trim().endsWith('free')).toBe(true);

      // not held: no message, no wait
      const free = await run('bash', ['-c', `. ${lib}; wait_dpkg_lock $((SECONDS + 120)); echo free`], {
        BERTH_DPKG_LOCKS: lock,
      });
      expect(free.stdout).toBe('free\n');
    } finally {
      for (const p of holders) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
