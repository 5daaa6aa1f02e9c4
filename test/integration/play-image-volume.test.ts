// berthctl play with Kubernetes image volumes (KEP-4639) end to end: the built CLI plays a pod
// whose container mounts an image pushed to the lab registry (whole, and a subPath of it), against
// a real berthd (registry, runc, conmon, CNI). The image is pulled before the containers, the
// container reads the image's files and finds the mounts read-only (readOnly: false included, as
// kubelet mounts image volumes read-only whatever it says), and --down leaves nothing behind.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import { berthctl } from '../lab/berthd';
import { startHarness, type Harness } from '../lab/harness';
import { daemonMounts, pinsIn } from '../lab/leaks';
import { pushImage } from '../lab/images';
import { makeTarSync } from '../lab/tar';
import { mountsUnder, unmount } from '../../internal/util/mount';

jest.setTimeout(180_000);

let h: Harness;
let work: string;
let podsDir: string;
let logRoot: string;
let dataImage: string;
let file: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthpv0', subnet: '10.223.0.0/24', prefix: 'pv' });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-play-iv-'));
  podsDir = path.join(work, 'pods');
  logRoot = path.join(work, 'logs');
  dataImage = (
    await pushImage(h.reg, 'lab/playdata', 'v1', {
      layers: [
        makeTarSync([
          { path: 'data/', type: 'dir' },
          { path: 'data/a.txt', content: 'from the image volume\n' },
          { path: 'data/sub/', type: 'dir' },
        ]),
        makeTarSync([
          { path: 'data/', type: 'dir' },
          { path: 'data/sub/', type: 'dir' },
          { path: 'data/sub/b.txt', content: 'from its sub path\n' },
        ]),
      ],
    })
  ).reference;
  file = path.join(work, 'pod.yaml');
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'imgvol' },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: 'reader',
            image: h.busybox,
            command: ['sleep', '3600'],
            volumeMounts: [
              { name: 'data', mountPath: '/data' },
              { name: 'data', mountPath: '/sub', subPath: 'data/sub', readOnly: false },
            ],
          },
        ],
        volumes: [{ name: 'data', image: { reference: dataImage } }],
      },
    }),
  );
});

afterAll(async () => {
  if (file) await play(['--down', '--grace-period', '0', file]).catch(() => undefined);
  await h?.cleanup();
  if (work) {
    // only what a failed test left mounted under this test's own dir
    for (const m of await mountsUnder(work)) await unmount(m);
    fs.rmSync(work, { recursive: true, force: true });
  }
});

function play(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return berthctl(h.d, ['play', '--pods-dir', podsDir, '--log-root', logRoot, ...args]);
}

/** Image volume views this daemon has mounted. */
const viewMounts = (): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(h.d.state) && m.includes('/imgvol/'));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('--dry-run shows the image volume pulled after the sandbox and mounted read-only with its sub-path', async () => {
  const r = await play(['--dry-run', file]);
  expect(r.code).toBe(0);
  const reqs = JSON.parse(r.stdout) as { method: string; request: Record<string, unknown>; note?: string }[];
  expect(reqs.map((x) => x.method)).toEqual([
    'RunPodSandbox',
    'PullImage',
    'PullImage',
    'CreateContainer',
    'StartContainer',
  ]);
  expect(reqs[1].request.image).toEqual({ image: dataImage });
  expect(reqs[1].note).toMatch(/^image volume data, only when ImageStatus does not find the image/);
  const mounts = (reqs[3].request.config as { mounts: Record<string, unknown>[] }).mounts;
  expect(mounts.slice(0, 2)).toEqual([
    {
      container_path: '/data',
      host_path: '',
      image: { image: dataImage, user_specified_image: dataImage },
      image_sub_path: '',
      readonly: true,
      propagation: 'PROPAGATION_PRIVATE',
    },
    {
      container_path: '/sub',
      host_path: '',
      image: { image: dataImage, user_specified_image: dataImage },
      image_sub_path: 'data/sub',
      readonly: true,
      propagation: 'PROPAGATION_PRIVATE',
    },
  ]);
});

test('the container reads the image volume, finds it read-only; --down leaves nothing', async () => {
  // not present before the play: the play pulls it (IfNotPresent, tag v1)
  expect((await call(h.d.clients.image, 'ImageStatus', { image: { image: dataImage } })).image).toBeFalsy();
  const r = await play(['--wait', file]);
  expect(r.stderr).toContain(`Pulling image "${dataImage}"`);
  expect(r.stderr).toContain(`Successfully pulled image "${dataImage}"`);
  expect(r.code).toBe(0);
  // the volume's pull comes before the container is created
  expect(r.stderr.indexOf(`Pulling image "${dataImage}"`)).toBeLessThan(
    r.stderr.indexOf('Created container reader'),
  );
  expect(r.stdout).toMatch(/^default\/imgvol\tsandbox=[0-9a-f]{13}\tip=10\.223\.0\.\d+\treader=running\n$/);
  const imageId = (await call(h.d.clients.image, 'ImageStatus', { image: { image: dataImage } })).image!.id;

  const pods = (await call(h.d.clients.runtime, 'ListPodSandbox', {})).items;
  expect(pods.map((p) => p.metadata!.name)).toEqual(['imgvol']);
  const uid = pods[0].metadata!.uid;
  const [ctr] = (
    await call(h.d.clients.runtime, 'ListContainers', { filter: { pod_sandbox_id: pods[0].id } })
  ).containers;
  expect((await h.exec(ctr.id, ['cat', '/data/data/a.txt', '/sub/b.txt'])).out).toBe(
    'from the image volume\nfrom its sub path\n',
  );
  for (const f of ['/data/data/new', '/sub/b.txt']) {
    const w = await h.exec(ctr.id, ['sh', '-c', `echo x > ${f}`]);
    expect(w.code).not.toBe(0);
    expect(w.err).toMatch(/Read-only file system/);
  }
  const inside = (await h.exec(ctr.id, ['cat', '/proc/self/mounts'])).out;
  for (const dest of ['/data', '/sub']) expect(inside).toMatch(new RegExp(` ${dest} \\S+ ro[, ]`));
  // the mounts name the pulled image by its id, as kubelet sends them
  const st = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: ctr.id });
  expect(
    st
      .status!.mounts.filter((m) => m.image?.image)
      .map((m) => [m.container_path, m.image!.image, m.image_sub_path, m.readonly]),
  ).toEqual([
    ['/data', imageId, '', true],
    ['/sub', imageId, 'data/sub', true],
  ]);
  expect(viewMounts()).toHaveLength(2);

  // played again while up: refused before anything is pulled or created
  const again = await play([file]);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/default\/imgvol is already played/);

  const down = await play(['--down', '--grace-period', '0', file]);
  expect(down.code).toBe(0);
  expect(down.stdout).toMatch(/^default\/imgvol\tremoved [0-9a-f]{13}\n$/);
  expect((await call(h.d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);
  expect((await call(h.d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
  // the views go with the container's background cleanup
  await until('the image volume views are released', () => viewMounts().length === 0);
  await until('no daemon mounts are left', async () => (await daemonMounts(h.d)).length === 0);
  await until('no view snapshots are left', () =>
    fs.readdirSync(path.join(h.d.root, 'snapshots', 'snapshots')).every((k) => !/\.iv\d+$/.test(k)),
  );
  expect(await mountsUnder(podsDir)).toEqual([]);
  expect(pinsIn(h.d.state, 'netns')).toEqual([]);
  expect(pinsIn(h.d.state, 'podns')).toEqual([]);
  expect(h.netw.allocated()).toEqual([]);
  expect(fs.existsSync(podsDir) ? fs.readdirSync(podsDir) : []).toEqual([]);
  expect(fs.existsSync(logRoot) ? fs.readdirSync(logRoot) : []).toEqual([]);
  const cgroups: string[] = [];
  for (const hier of fs.readdirSync('/sys/fs/cgroup'))
    for (const tier of ['', 'burstable', 'besteffort']) {
      const p = path.join('/sys/fs/cgroup', hier, 'kubepods', tier, `pod${uid}`);
      if (fs.existsSync(p)) cgroups.push(p);
    }
  expect(cgroups).toEqual([]);
});

test('a missing reference is refused naming the volume, before anything is sent', async () => {
  const bad = path.join(work, 'bad.yaml');
  fs.writeFileSync(
    bad,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'noref' },
      spec: {
        containers: [{ name: 'c', image: h.busybox, volumeMounts: [{ name: 'empty', mountPath: '/e' }] }],
        volumes: [{ name: 'empty', image: { pullPolicy: 'IfNotPresent' } }],
      },
    }),
  );
  const r = await play([bad]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/volume "empty": image\.reference is missing/);
  expect((await call(h.d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);
});
