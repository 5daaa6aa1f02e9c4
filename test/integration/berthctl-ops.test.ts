// berthctl's operator commands end to end, the built CLI (dist/) against a real berthd with real
// runc, conmon and a CNI pod: stats/statsp (table, JSON, YAML, --watch), events, update, run,
// rmi --prune, -o yaml, pull's progress (bar on a pty, plain lines otherwise), crictl's config file
// and environment. (--help is covered in-process by cmd/berthctl/help.test.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tty from 'node:tty';
import * as YAML from 'yaml';
import { call } from '../../api/client';
import type { PodSandboxConfig } from '../../api/generated';
import { BERTHCTL, berthctl } from '../lab/berthd';
import { startHarness, type Harness } from '../lab/harness';
import { busyboxLayer, pushImage } from '../lab/images';
import { makeTar } from '../lab/tar';
import { startThrottleProxy } from '../lab/throttle';
import { openPty } from '../../internal/streaming/native-io';

jest.setTimeout(180_000);

let h: Harness;
let pod: PodSandboxConfig;
let podId: string;
let sleeper: string;
let tmp: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthop0', subnet: '10.239.0.0/24', prefix: 'op' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berthctl-ops-'));
  pod = h.podConfig({ labels: { suite: 'ops' } });
  podId = await h.runPod(pod);
  sleeper = await h.startCtr(podId, pod, h.ctrConfig('sleeper', ['sleep', '3600']));
});

afterAll(async () => {
  await h?.cleanup();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Live {
  proc: ChildProcess;
  out(): string;
  err(): string;
  exited(): Promise<number | null>;
}

/** berthctl left running (--watch, events), with a clean env of its own. */
function startCtl(args: string[], env: Record<string, string> = {}): Live {
  const proc = spawn(process.execPath, [BERTHCTL, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, err: () => err, exited: () => exit };
}

/** berthctl run to its end with its own env (no --endpoint added). */
async function ctlEnv(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const l = startCtl(args, env);
  const code = await l.exited();
  return { code, stdout: l.out(), stderr: l.err() };
}

async function until(cond: () => boolean, what: () => string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out; so far:\n${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('stats and statsp', () => {
  it('stats: a table, JSON and YAML of the running containers', async () => {
    const t = await berthctl(h.d, ['stats']);
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES\s+SWAP$/);
    expect(lines.some((l) => l.startsWith(sleeper.slice(0, 13)) && /\ssleeper\s/.test(l))).toBe(true);

    const j = await berthctl(h.d, ['stats', '-o', 'json', sleeper.slice(0, 13)]);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as { stats: { attributes: { id: string }; memory: unknown }[] };
    expect(doc.stats.map((s) => s.attributes.id)).toEqual([sleeper]);
    expect(doc.stats[0]?.memory).toBeTruthy();

    const y = await berthctl(h.d, ['stats', '-o', 'yaml', '--id', sleeper]);
    expect(y.code).toBe(0);
    const ydoc = YAML.parse(y.stdout) as typeof doc;
    expect(ydoc.stats.map((s) => s.attributes.id)).toEqual([sleeper]);

    const bad = await berthctl(h.d, ['stats', '-o', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown output format xml');
  });

  it('statsp: the pod in a table and as JSON/YAML, by label', async () => {
    const t = await berthctl(h.d, ['statsp', '--label', 'suite=ops']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^POD\s+POD ID\s+CPU %\s+MEM/);
    expect(t.stdout).toContain(podId.slice(0, 13));
    expect(t.stdout).toContain(pod.metadata?.name);
    const j = await berthctl(h.d, ['statsp', '-o', 'json', podId]);
    const doc = JSON.parse(j.stdout) as {
      stats: { attributes: { id: string }; linux: { containers: unknown[] } }[];
    };
    expect(doc.stats.map((s) => s.attributes.id)).toEqual([podId]);
    expect(doc.stats[0]?.linux.containers.length).toBe(1);
    const y = await berthctl(h.d, ['statsp', '-o', 'yaml', podId]);
    expect((YAML.parse(y.stdout) as typeof doc).stats[0]?.attributes.id).toBe(podId);
  });

  it('--watch repeats until SIGINT, then exits 0', async () => {
    for (const cmd of ['stats', 'statsp']) {
      const l = startCtl(['--endpoint', h.d.endpoint, cmd, '--watch', '-s', '1']);
      const header = cmd === 'stats' ? 'CONTAINER' : 'POD ID';
      await until(
        () => l.out().split(header).length - 1 >= 2,
        () => l.out() + l.err(),
      );
      l.proc.kill('SIGINT');
      expect(await l.exited()).toBe(0);
      expect(l.err()).toBe('');
    }
  });
});

describe('events', () => {
  it('streams created, started, stopped and deleted events of a container (JSON, YAML, table)', async () => {
    for (const output of ['json', 'yaml', 'table']) {
      const l = startCtl(['--endpoint', h.d.endpoint, 'events', '-o', output]);
      try {
        // The stream is set up asynchronously: make containers until one's whole life was seen.
        let id = '';
        const seen = (): boolean =>
          output === 'table'
            ? ['Created', 'Started', 'Stopped', 'Deleted'].every((e) =>
                l.out().includes(`${e}  ${id.slice(0, 13)}`),
              )
            : ['CREATED', 'STARTED', 'STOPPED', 'DELETED'].every((e) =>
                new RegExp(
                  `${id}[^\\n]*\\n?[^\\n]*CONTAINER_${e}_EVENT|CONTAINER_${e}_EVENT[\\s\\S]{0,40}?${id}`,
                ).test(l.out()),
              );
        for (let attempt = 0; attempt < 5; attempt++) {
          id = await h.startCtr(podId, pod, h.ctrConfig(`ev-${output}-${attempt}`, ['sleep', '3600']));
          await call(h.d.clients.runtime, 'StopContainer', { container_id: id, timeout: 0 });
          await call(h.d.clients.runtime, 'RemoveContainer', { container_id: id });
          try {
            await until(seen, () => l.out(), 5_000);
            break;
          } catch {
            // the stream was not there yet for this one; go again
          }
        }
        expect(seen()).toBe(true);
        if (output === 'json') {
          const evs = l
            .out()
            .trim()
            .split('\n')
            .map((x) => JSON.parse(x) as { container_id: string; container_event_type: string });
          expect(evs.filter((e) => e.container_id === id).map((e) => e.container_event_type)).toEqual([
            'CONTAINER_CREATED_EVENT',
            'CONTAINER_STARTED_EVENT',
            'CONTAINER_STOPPED_EVENT',
            'CONTAINER_DELETED_EVENT',
          ]);
        }
        if (output === 'yaml') {
          const docs = YAML.parseAllDocuments(l.out()).map((d) => d.toJS() as { container_id: string });
          expect(docs.filter((d) => d.container_id === id).length).toBe(4);
        }
      } finally {
        l.proc.kill('SIGINT');
      }
      expect(await l.exited()).toBe(0);
      expect(l.err()).toBe('');
    }
  });
});

async function containerPid(id: string): Promise<number> {
  const st = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: id, verbose: true });
  return (JSON.parse(st.info.info ?? '{}') as { pid: number }).pid;
}

/** The memory limit or the CPU quota and period of a process's cgroup, as "N" / "QUOTA PERIOD". */
function cgroupValue(pid: number, what: 'memory' | 'cpu'): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes(what));
  const read = (f: string): string => fs.readFileSync(f, 'utf8').trim();
  if (v1) {
    const rel = v1.split(':')[2];
    const dir = fs.existsSync(`/sys/fs/cgroup/${what}`) ? `/sys/fs/cgroup/${what}${rel}` : '';
    if (what === 'memory') return read(`${dir}/memory.limit_in_bytes`);
    return `${read(`${dir}/cpu.cfs_quota_us`)} ${read(`${dir}/cpu.cfs_period_us`)}`;
  }
  const rel = lines.find((l) => l.startsWith('0::'))?.slice(3) ?? '';
  return read(`/sys/fs/cgroup${rel}/${what === 'memory' ? 'memory.max' : 'cpu.max'}`);
}

describe('update', () => {
  it("changes a running container's cgroup limits with crictl's flags", async () => {
    const r = await berthctl(h.d, [
      'update',
      '--memory',
      '96m',
      '--cpu-shares',
      '256',
      '--cpu-quota',
      '30000',
      '--cpu-period',
      '100000',
      sleeper.slice(0, 13),
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(sleeper);
    const st = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: sleeper });
    expect(st.status?.resources?.linux).toMatchObject({
      memory_limit_in_bytes: String(96 * 1024 * 1024),
      cpu_shares: '256',
      cpu_quota: '30000',
      cpu_period: '100000',
    });
    // what the kernel enforces: the container process's own cgroup (v1 or v2)
    expect(cgroupValue(await containerPid(sleeper), 'memory')).toBe(String(96 * 1024 * 1024));
    expect(cgroupValue(await containerPid(sleeper), 'cpu')).toBe('30000 100000');

    const none = await berthctl(h.d, ['update', sleeper]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('nothing to update');
    const badMem = await berthctl(h.d, ['update', '--memory', 'lots', sleeper]);
    expect(badMem.code).toBe(2);
    expect(badMem.stderr).toContain('--memory wants bytes');
    const missing = await berthctl(h.d, ['update', '--memory', '64m', 'f'.repeat(64)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found/i);
  });
});

describe('run and rmi --prune', () => {
  it('run pulls the image it lacks and starts a pod and container; rmi --prune removes only unused images', async () => {
    const runImg = await pushImage(h.reg, 'lab/run', 'v1', { layers: [busyboxLayer()] });
    const unused = await pushImage(h.reg, 'lab/unused', 'v1', {
      layers: [await makeTar([{ path: 'unused.txt', content: Buffer.from('unused') }])],
    });
    await call(h.d.clients.image, 'PullImage', { image: { image: unused.reference } });
    expect(
      (await call(h.d.clients.image, 'ImageStatus', { image: { image: runImg.reference } })).image,
    ).toBeFalsy();

    const podFile = path.join(tmp, 'run-pod.yaml');
    const ctrFile = path.join(tmp, 'run-ctr.json');
    const runPod = h.podConfig();
    fs.writeFileSync(podFile, YAML.stringify(runPod));
    fs.writeFileSync(
      ctrFile,
      JSON.stringify(h.ctrConfig('runner', ['sleep', '3600'], { image: { image: runImg.reference } })),
    );
    const r = await berthctl(h.d, ['run', ctrFile, podFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    const st = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: id });
    expect(st.status?.state).toBe('CONTAINER_RUNNING');
    expect(
      (await call(h.d.clients.image, 'ImageStatus', { image: { image: runImg.reference } })).image?.id,
    ).toBe(runImg.configDigest);

    const p = await berthctl(h.d, ['rmi', '--prune']);
    expect(p.code).toBe(0);
    expect(p.stdout).toBe(`Deleted: ${unused.reference}\n`);
    const left = (await call(h.d.clients.image, 'ListImages', {})).images.flatMap((i) => i.repo_tags);
    expect(left).toEqual(expect.arrayContaining([h.busybox, runImg.reference, `${h.reg.host}/pause:3.10`]));
    expect(left).not.toContain(unused.reference);

    const bad = await berthctl(h.d, ['rmi', '--prune', h.busybox]);
    expect(bad.code).toBe(2);
    await h.removePod(await podOf(id));
  });
});

async function podOf(containerId: string): Promise<string> {
  const l = await call(h.d.clients.runtime, 'ListContainers', { filter: { id: containerId } });
  return l.containers[0]?.pod_sandbox_id ?? '';
}

describe('-o yaml', () => {
  it('pods, ps, images, inspect, inspectp, inspecti, info and imagefsinfo print their document as YAML', async () => {
    // the lists: the same document as -o json
    for (const cmd of ['pods', 'ps', 'images']) {
      const a = await berthctl(h.d, [cmd, '-o', 'json']);
      const b = await berthctl(h.d, [cmd, '-o', 'yaml']);
      expect([cmd, b.code, b.stderr]).toEqual([cmd, 0, '']);
      expect(YAML.parse(b.stdout)).toEqual(JSON.parse(a.stdout));
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML, shape checked below
    type Doc = Record<string, any>;
    const docs: [string[], (d: Doc) => unknown, unknown][] = [
      [['inspect', '-o', 'yaml', sleeper], (d) => d.status.id, sleeper],
      [['inspectp', '-o', 'yaml', podId], (d) => d.status.id, podId],
      [['inspecti', '-o', 'yaml', h.busybox], (d) => d.status.repo_tags, [h.busybox]],
      [['imagefsinfo', '-o', 'yaml'], (d) => Array.isArray(d.image_filesystems), true],
      [['info', '-o', 'yaml'], (d) => d.status.conditions.length, 2],
    ];
    for (const [args, pick, want] of docs) {
      const r = await berthctl(h.d, args);
      expect([args[0], r.code, r.stderr]).toEqual([args[0], 0, '']);
      expect([args[0], pick(YAML.parse(r.stdout) as Doc)]).toEqual([args[0], want]);
    }
  });
});

describe('pull progress', () => {
  async function slowImage(repo: string): Promise<string> {
    const layer = await makeTar([{ path: 'blob.bin', content: crypto.randomBytes(4 * 1024 * 1024) }]);
    await pushImage(h.reg, repo, 'v1', { layers: [layer], compression: 'none' });
    return repo;
  }

  it('prints plain progress lines (layers, bytes, rate) when stderr is not a terminal', async () => {
    const repo = await slowImage('lab/slow-plain');
    const proxy = await startThrottleProxy(h.reg.url, 1024 * 1024);
    try {
      const ref = `${proxy.host}/${repo}:v1`;
      const r = await berthctl(h.d, ['pull', ref]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Image is up to date for sha256:[0-9a-f]{64}\n$/);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) {
        expect(l).toMatch(
          new RegExp(`^${ref.replace(/[.:/]/g, '\\$&')}: layers \\d/1  \\S+/4\\.\\d+MB  \\S+/s$`),
        );
      }
      expect(r.stderr).not.toContain('\r');
    } finally {
      await proxy.stop();
    }
  });

  it('draws a bar on a terminal', async () => {
    const repo = await slowImage('lab/slow-bar');
    const proxy = await startThrottleProxy(h.reg.url, 1024 * 1024);
    const { master, slave } = openPty(24, 100);
    const term = new tty.ReadStream(master);
    let screen = '';
    term.on('data', (c: Buffer) => (screen += c.toString()));
    term.on('error', () => undefined);
    try {
      const ref = `${proxy.host}/${repo}:v1`;
      const p = spawn(process.execPath, [BERTHCTL, '--endpoint', h.d.endpoint, 'pull', ref], {
        stdio: ['ignore', 'pipe', slave],
      });
      let out = '';
      p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
      await until(
        () => screen.includes('\r\x1b[K'),
        () => JSON.stringify(screen),
        5_000,
      );
      expect(code).toBe(0);
      expect(out).toMatch(/^Image is up to date for sha256:/);
      expect(screen).toMatch(/\r\[[=> ]+\]\s+\d+% {2}layers \d\/1 {2}\S+\/4\.\d+MB {2}\S+\/s/);
    } finally {
      fs.closeSync(slave);
      term.destroy();
      await proxy.stop();
    }
  });
});

describe("crictl's config file and environment", () => {
  it('reads runtime-endpoint and timeout from --config / CRI_CONFIG_FILE; flag > env > file', async () => {
    const good = path.join(tmp, 'crictl.yaml');
    const bogusSock = `unix://${path.join(tmp, 'nobody.sock')}`;
    fs.writeFileSync(
      good,
      `runtime-endpoint: ${h.d.endpoint}\nimage-endpoint: ${h.d.endpoint}\ntimeout: 3\n`,
    );
    const bogus = path.join(tmp, 'bogus.yaml');
    fs.writeFileSync(bogus, `runtime-endpoint: ${bogusSock}\ntimeout: 1s\n`);
    const clean = { CONTAINER_RUNTIME_ENDPOINT: '', IMAGE_SERVICE_ENDPOINT: '', BERTH_ENDPOINT: '' };

    const viaFlag = await ctlEnv(['--config', good, 'version'], clean);
    expect(viaFlag.stdout).toContain('RuntimeName:  berth');
    const viaEnv = await ctlEnv(['images', '-q'], { ...clean, CRI_CONFIG_FILE: good });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain('sha256:');

    // env beats the file, the flag beats env
    const envWins = await ctlEnv(['--config', bogus, 'version'], {
      ...clean,
      CONTAINER_RUNTIME_ENDPOINT: h.d.endpoint,
    });
    expect(envWins.code).toBe(0);
    const flagWins = await ctlEnv(['--config', good, '-r', bogusSock, 'version'], {
      ...clean,
      CONTAINER_RUNTIME_ENDPOINT: h.d.endpoint,
    });
    expect(flagWins.code).toBe(1);
    expect(flagWins.stderr).toContain(`cannot connect to ${bogusSock} within 3s`);
    // the file's timeout (1s) is used
    const fileTimeout = await ctlEnv(['--config', bogus, 'version'], clean);
    expect(fileTimeout.code).toBe(1);
    expect(fileTimeout.stderr).toContain(`cannot connect to ${bogusSock} within 1s`);
    // an image endpoint of its own: image commands go there
    const splitFile = path.join(tmp, 'split.yaml');
    fs.writeFileSync(
      splitFile,
      `runtime-endpoint: ${h.d.endpoint}\nimage-endpoint: ${bogusSock}\ntimeout: 1\n`,
    );
    const split = await ctlEnv(['--config', splitFile, 'images'], clean);
    expect(split.code).toBe(1);
    expect(split.stderr).toContain(`cannot connect to ${bogusSock}`);
    const splitEnv = await ctlEnv(['--config', splitFile, 'images', '-q'], {
      ...clean,
      IMAGE_SERVICE_ENDPOINT: h.d.endpoint,
    });
    expect(splitEnv.code).toBe(0);
    // a named config file that is not there is an error, not the default
    const missing = await ctlEnv(['--config', path.join(tmp, 'none.yaml'), 'version'], clean);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read config file');
  });
});
