// berthctl play end to end: the built CLI plays the example manifests in deploy/examples/ against a
// real berthd (lab registry, runc, conmon, CNI with portmap), and --down leaves nothing behind.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { call } from '../../api/client';
import { BERTHCTL, berthctl, REPO_ROOT } from '../lab/berthd';
import { startHarness, type Harness } from '../lab/harness';
import { daemonMounts, pinsIn } from '../lab/leaks';
import { mountsUnder } from '../../internal/util/mount';

jest.setTimeout(180_000);

let h: Harness;
let work: string;
let podsDir: string;
let logRoot: string;
const hostPort = 30000 + (process.pid % 2000);

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthpl0', subnet: '10.237.0.0/24', prefix: 'pl' });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-play-'));
  podsDir = path.join(work, 'pods');
  logRoot = path.join(work, 'logs');
});

afterAll(async () => {
  await h?.cleanup();
  if (work) {
    for (const m of await mountsUnder(work)) {
      // only what a failed test left mounted under this test's own dir
      await import('../../internal/util/mount').then((u) => u.unmount(m));
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
});

/** the manifests the running test played (afterEach takes them down) */
const played: string[] = [];

/** An example manifest with the lab's busybox image (and `edit` applied), written to the work dir. */
function example(name: string, edit: (s: string) => string = (s) => s): string {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'examples', name), 'utf8');
  const p = path.join(work, name);
  played.push(p);
  fs.writeFileSync(p, edit(text.replace(/image: busybox$/gm, `image: ${h.busybox}`)));
  return p;
}

afterEach(async () => {
  // a failed test's pods must not spoil the next test's "nothing left"
  for (const f of played.splice(0)) await play(['--down', '--grace-period', '0', f]);
});

const dirs = (): string[] => ['--pods-dir', podsDir, '--log-root', logRoot];

async function play(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return berthctl(h.d, ['play', ...dirs(), ...args]);
}

/** uids of the pods the tests saw, to check their cgroups are gone after --down */
const seenUids = new Set<string>();

async function sandboxesOf(name: RegExp): Promise<{ id: string; name: string }[]> {
  const res = await call(h.d.clients.runtime, 'ListPodSandbox', {});
  for (const p of res.items) seenUids.add(p.metadata!.uid);
  return res.items
    .filter((p) => name.test(p.metadata!.name))
    .map((p) => ({ id: p.id, name: p.metadata!.name }));
}

async function containersOf(
  podId: string,
): Promise<{ id: string; name: string; attempt: number; state: string }[]> {
  const res = await call(h.d.clients.runtime, 'ListContainers', { filter: { pod_sandbox_id: podId } });
  return res.containers.map((c) => ({
    id: c.id,
    name: c.metadata!.name,
    attempt: c.metadata!.attempt,
    state: c.state,
  }));
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (b: Buffer) => (body += b.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Nothing of the played pods is left: no sandboxes, containers, mounts, netns pins, IPs, pod dirs, logs. */
async function expectNothingLeft(): Promise<void> {
  expect((await call(h.d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);
  expect((await call(h.d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
  // RemovePodSandbox answered; its cleanup (the infra container, the pod's own mounts) runs after
  await h.d.settled();
  expect(await mountsUnder(podsDir)).toEqual([]);
  expect(await daemonMounts(h.d)).toEqual([]);
  expect(pinsIn(h.d.state, 'netns')).toEqual([]);
  expect(pinsIn(h.d.state, 'podns')).toEqual([]);
  expect(h.netw.allocated()).toEqual([]);
  expect(fs.existsSync(podsDir) ? fs.readdirSync(podsDir) : []).toEqual([]);
  expect(fs.existsSync(logRoot) ? fs.readdirSync(logRoot) : []).toEqual([]);
  // the pods' cgroups (/kubepods[/<qos>]/pod<uid> in every hierarchy)
  const left: string[] = [];
  for (const hier of fs.readdirSync('/sys/fs/cgroup')) {
    for (const tier of ['', 'burstable', 'besteffort']) {
      for (const uid of seenUids) {
        const p = path.join('/sys/fs/cgroup', hier, 'kubepods', tier, `pod${uid}`);
        if (fs.existsSync(p)) left.push(p);
      }
    }
  }
  expect(left).toEqual([]);
}

test('a Deployment template (busybox httpd for nginx) answers on its hostPort on 127.0.0.1; --down removes it', async () => {
  const file = example('play-web.yaml', (s) => s.replace('hostPort: 30080', `hostPort: ${hostPort}`));
  const r = await play(['--wait', file]);
  expect(r.stderr).toContain('Started container nginx');
  expect(r.code).toBe(0);
  // one line per pod: name, sandbox, IP, container states
  expect(r.stdout).toMatch(
    /^default\/web-[a-z0-9]{10}-[a-z0-9]{5}\tsandbox=[0-9a-f]{13}\tip=10\.237\.0\.\d+\tnginx=running\n$/,
  );
  const ip = /ip=(\S+)/.exec(r.stdout)![1];
  const body = await get(`http://127.0.0.1:${hostPort}/`);
  // env from fieldRef (name, namespace, pod IP) expanded into args by $(VAR)
  expect(body).toMatch(new RegExp(`^hello from web-\\S+ in default at ${ip.replace(/\./g, '\\.')}\n$`));
  const [pod] = await sandboxesOf(/^web-/);
  const st = await call(h.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: pod.id });
  expect(st.status!.labels['io.kubernetes.pod.namespace']).toBe('default');
  expect(st.status!.labels.app).toBe('web');
  const [ctr] = await containersOf(pod.id);
  const cs = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: ctr.id });
  expect(cs.status!.log_path).toBe(
    path.join(logRoot, `default_${pod.name}_${st.status!.metadata!.uid}`, 'nginx', '0.log'),
  );
  expect(cs.status!.annotations['io.kubernetes.container.restartCount']).toBe('0');

  // playing the same file again is refused: the pod exists
  const again = await play([file]);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(
    /default\/web-\S+ is already played \(sandbox [0-9a-f]{13}\); berthctl play --down FILE first/,
  );
  expect(await sandboxesOf(/^web-/)).toHaveLength(1);

  const down = await play(['--down', file]);
  expect(down.code).toBe(0);
  expect(down.stdout).toMatch(/^default\/web-\S+\tremoved [0-9a-f]{13}\n$/);
  await expectNothingLeft();
  // a second --down finds nothing and says so
  expect((await play(['--down', file])).stdout).toMatch(/\tno pod\n$/);
});

test('an init container writes into an emptyDir the app container reads; Memory emptyDir is a sized tmpfs', async () => {
  const file = example('play-init.yaml');
  const r = await play(['--wait', file]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^default\/init-demo\t.*\tinit:fetch=exited\(0\) app=running\n$/);
  // kubelet's order: the init container ran to completion before the app container was created
  const created = r.stderr.split('\n').filter((l) => / (Created|Started) container /.test(l));
  expect(created.map((l) => l.replace(/^.* (Created|Started) container /, '$1 '))).toEqual([
    'Created fetch',
    'Started fetch',
    'Created app',
    'Started app',
  ]);
  const [pod] = await sandboxesOf(/^init-demo$/);
  const app = (await containersOf(pod.id)).find((c) => c.name === 'app')!;
  const ex = await h.exec(app.id, [
    'sh',
    '-c',
    'cat /work/message; cat /etc/podinfo/labels; grep " /cache " /proc/mounts',
  ]);
  expect(ex.out).toContain('written by the init container\n');
  expect(ex.out).toContain('app="init-demo"\ntier="demo"\n');
  expect(ex.out).toMatch(/tmpfs \/cache tmpfs .*size=16384k/);
  // the app mounts /work read-only
  expect((await h.exec(app.id, ['sh', '-c', 'echo x > /work/y'])).code).not.toBe(0);
  expect((await mountsUnder(podsDir)).length).toBe(1); // the Memory emptyDir

  expect((await play(['--down', file])).code).toBe(0);
  await expectNothingLeft();
});

test('a Job that exits 3: --wait fails with exit code 3 and its last log line', async () => {
  // Always: the image is pulled from the lab registry even though berthd has it
  const file = example('play-job.yaml', (s) => s.replace(/IfNotPresent/g, 'Always'));
  const r = await play(['--wait', file]);
  expect(r.stderr).toContain('Pulling image');
  expect(r.stderr).toMatch(/container migrate failed: Error, exit code 3/);
  expect(r.stderr).toContain('  migration failed: table users is locked\n');
  expect(r.code).toBe(3);
  expect(r.stdout).toMatch(/^default\/migrate-\S+\t.*\tmigrate=exited\(3\)\n$/);
  expect(await sandboxesOf(/^migrate-/)).toHaveLength(1);
  expect((await play(['--down', file])).code).toBe(0);
  await expectNothingLeft();
});

test('--follow: a failing liveness probe kills the container and it is restarted (attempt 1, log 1.log)', async () => {
  const file = example('play-liveness.yaml');
  const p = spawn(
    process.execPath,
    [BERTHCTL, '--endpoint', h.d.endpoint, 'play', ...dirs(), '--follow', file],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  try {
    let restarted: { id: string; attempt: number; state: string } | undefined;
    for (let i = 0; i < 600 && !restarted; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const [pod] = await sandboxesOf(/^liveness-demo$/);
      if (!pod) continue;
      restarted = (await containersOf(pod.id)).find(
        (c) => c.attempt === 1 && c.state === 'CONTAINER_RUNNING',
      );
    }
    expect(restarted).toBeDefined();
    expect(stderr).toMatch(
      /Warning liveness-demo|Warning default\/liveness-demo Unhealthy: Liveness probe failed/,
    );
    expect(stderr).toContain('Killing: Container app failed liveness probe, will be restarted');
    const cs = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: restarted!.id });
    expect(cs.status!.log_path).toMatch(/\/app\/1\.log$/);
    expect(cs.status!.annotations['io.kubernetes.container.restartCount']).toBe('1');
  } finally {
    p.kill('SIGINT');
  }
  expect(await exited).toBe(0);
  const file2 = file;
  expect((await play(['--down', '--grace-period', '0', file2])).code).toBe(0);
  await expectNothingLeft();
});

test('configMap and secret volumes and env from --config-dir; a checked hostPath', async () => {
  const file = example('play-config.yaml');
  const configDir = path.join(REPO_ROOT, 'deploy', 'examples', 'play-config');
  const r = await play(['--wait', '--config-dir', configDir, file]);
  expect(r.code).toBe(0);
  const [pod] = await sandboxesOf(/^config-demo$/);
  const [app] = await containersOf(pod.id);
  const ex = await h.exec(app.id, [
    'sh',
    '-c',
    'cat /www/index.html; ls /www; echo "$LOG_LEVEL|$API_token"; cat /var/run/secrets/api/token; echo; test -f /host/etc/hostname && echo host-etc',
  ]);
  expect(ex.out).toBe('<h1>served from a ConfigMap</h1>\nindex.html\ninfo\n|s3cr3t\ns3cr3t\nhost-etc\n');
  // the secret lives on a tmpfs, as kubelet puts it, with its defaultMode
  const secretDir = (await mountsUnder(podsDir)).find((m) => m.endsWith('kubernetes.io~secret/token'));
  expect(secretDir).toBeDefined();
  expect(fs.statSync(path.join(secretDir!, 'token')).mode & 0o777).toBe(0o400);
  // a hostPath that is not what its type says is refused before anything is sent
  const bad = await berthctl(
    h.d,
    ['play', ...dirs(), '-'],
    `apiVersion: v1\nkind: Pod\nmetadata: {name: hp}\nspec:\n  containers: [{name: c, image: "${h.busybox}"}]\n  volumes: [{name: h, hostPath: {path: /etc, type: File}}]\n`,
  );
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('volume "h": hostPath /etc is not a file');
  expect(await sandboxesOf(/^hp$/)).toEqual([]);
  expect((await play(['--down', file])).code).toBe(0);
  await expectNothingLeft();
});

test('a failing init container stops the pod before its app containers (restartPolicy Never)', async () => {
  const file = path.join(work, 'init-fails.yaml');
  played.push(file);
  fs.writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Pod',
      'metadata: {name: init-fails}',
      'spec:',
      '  restartPolicy: Never',
      '  terminationGracePeriodSeconds: 2',
      `  initContainers: [{name: check, image: "${h.busybox}", imagePullPolicy: IfNotPresent, command: [sh, -c, "echo no database; exit 1"]}]`,
      `  containers: [{name: app, image: "${h.busybox}", imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}]`,
      '',
    ].join('\n'),
  );
  const r = await play(['--wait', file]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('container check failed: Init:Error, exit code 1');
  expect(r.stderr).toContain('  no database\n');
  expect(r.stderr).toContain('the pod is left for inspection; --down FILE removes it');
  expect(r.stdout).toMatch(/^default\/init-fails\t.*\tinit:check=exited\(1\)\n$/);
  const [pod] = await sandboxesOf(/^init-fails$/);
  expect((await containersOf(pod.id)).map((c) => c.name)).toEqual(['check']);
  expect((await play(['--down', file])).code).toBe(0);
  await expectNothingLeft();
});

test('--dry-run sends nothing; other kinds and volumes play cannot provide are refused by name', async () => {
  const file = example('play-init.yaml');
  const r = await play(['--dry-run', file]);
  expect(r.code).toBe(0);
  const reqs = JSON.parse(r.stdout) as { method: string }[];
  expect(reqs.map((x) => x.method)).toEqual([
    'RunPodSandbox',
    'PullImage',
    'CreateContainer',
    'StartContainer',
    'PullImage',
    'CreateContainer',
    'StartContainer',
  ]);
  expect((await call(h.d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);

  const svc = await berthctl(
    h.d,
    ['play', ...dirs(), '-'],
    'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n',
  );
  expect(svc.code).toBe(1);
  expect(svc.stderr).toContain('kind "Service" cannot be played');
  const pvc = await berthctl(
    h.d,
    ['play', ...dirs(), '-'],
    `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: "${h.busybox}"}]\n  volumes: [{name: data, configMap: {name: settings}}]\n`,
  );
  expect(pvc.code).toBe(1);
  expect(pvc.stderr).toContain('volume "data": configMap "settings" is not in --config-dir');
  await expectNothingLeft();
});
