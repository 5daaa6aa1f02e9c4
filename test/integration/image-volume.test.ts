// Image volumes (KEP-4639, issue 11 item 2) end to end: a CRI Mount with `image` set mounts that
// image's layers read-only into a real runc container, at a sub-path resolved inside the image.
// Real berthd, registry, runc, conmon and CNI; the image's layers are the snapshotter's own
// (never copied), held in use by a read-only view snapshot while the container exists.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { call } from '../../api/client';
import type { ContainerConfig, Mount, PodSandboxConfig } from '../../api/generated';
import { berthctl, type TestDaemon } from '../lab/berthd';
import { startHarness, type Harness } from '../lab/harness';
import { pushImage } from '../lab/images';
import { makeTarSync } from '../lab/tar';

let h: Harness;
let d: TestDaemon;
/** two layers: /data/a.txt and /data/sub/b.txt, symlinks in and out of the image, a whiteout */
let dataImage: string;
let dataImageId: string;
/** one layer (its view is a bind of the layer, not an overlay) */
let oneLayer: string;
let pod: PodSandboxConfig;
let podId: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthiv0', subnet: '10.229.0.0/24', prefix: 'iv' });
  d = h.d;
  dataImage = (
    await pushImage(h.reg, 'lab/data', 'v1', {
      layers: [
        makeTarSync([
          { path: 'data/', type: 'dir' },
          { path: 'data/a.txt', content: 'from layer one\n' },
          { path: 'data/gone.txt', content: 'whited out above\n' },
          { path: 'data/sub/', type: 'dir' },
          { path: 'data/empty/', type: 'dir' },
        ]),
        makeTarSync([
          { path: 'data/', type: 'dir' },
          { path: 'data/.wh.gone.txt', content: '' },
          { path: 'data/sub/', type: 'dir' },
          { path: 'data/sub/b.txt', content: 'from layer two\n' },
          { path: 'data/abs', type: 'symlink', linkname: '/data/sub' },
          { path: 'data/escape', type: 'symlink', linkname: '../../..' },
          { path: 'data/file', content: 'not a dir\n' },
        ]),
      ],
    })
  ).reference;
  oneLayer = (
    await pushImage(h.reg, 'lab/one', 'v1', {
      layers: [
        makeTarSync([
          { path: 'only/', type: 'dir' },
          { path: 'only/c.txt', content: 'single layer\n' },
        ]),
      ],
    })
  ).reference;
  dataImageId = (await call(d.clients.image, 'PullImage', { image: { image: dataImage } })).image_ref;
  await call(d.clients.image, 'PullImage', { image: { image: oneLayer } });
  pod = h.podConfig();
  podId = await h.runPod(pod);
});

afterAll(async () => {
  if (podId) await h.removePod(podId).catch(() => undefined);
  await h?.cleanup();
});

const volume = (containerPath: string, image: string, subPath = '', extra: Partial<Mount> = {}): Mount => ({
  container_path: containerPath,
  image: { image },
  image_sub_path: subPath,
  readonly: true,
  ...extra,
});

let seq = 0;
const withVolumes = (mounts: Mount[]): ContainerConfig =>
  h.ctrConfig(`iv${++seq}`, ['sleep', '3600'], { mounts });

async function create(cfg: ContainerConfig): Promise<string> {
  return (
    await call(d.clients.runtime, 'CreateContainer', {
      pod_sandbox_id: podId,
      config: cfg,
      sandbox_config: pod,
    })
  ).container_id;
}

async function refused(cfg: ContainerConfig): Promise<{ code: number; details: string }> {
  const err = (await create(cfg).then(
    () => new Error('CreateContainer succeeded'),
    (e: unknown) => e,
  )) as { code?: number; details?: string };
  if (err instanceof Error && err.message === 'CreateContainer succeeded') throw err;
  return { code: err.code ?? -1, details: err.details ?? '' };
}

async function remove(id: string): Promise<void> {
  await call(d.clients.runtime, 'StopContainer', { container_id: id, timeout: 0 });
  await call(d.clients.runtime, 'RemoveContainer', { container_id: id });
}

/** Mount points under this daemon's state dir that are image volume views. */
const viewMounts = (): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(d.state) && m.includes('/imgvol/'));

/** Snapshot keys of image volume views. */
const viewSnapshots = (): string[] =>
  fs.readdirSync(path.join(d.root, 'snapshots', 'snapshots')).filter((k) => /\.iv\d+$/.test(k));

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('image volumes', () => {
  test('the image is readable inside the container, read-only, at the sub-path; status reports it', async () => {
    const nestedDir = fs.mkdtempSync(path.join(h.logDir, 'nested-'));
    fs.writeFileSync(path.join(nestedDir, 'nested.txt'), 'bound inside the volume\n');
    const id = await create(
      withVolumes([
        volume('/vol', dataImage),
        volume('/sub', dataImage, 'data/sub'),
        volume('/one', oneLayer, 'only'),
        volume('/linked', dataImage, 'data/abs'),
        // a bind inside a volume, on a directory the image has
        { container_path: '/vol/data/empty', host_path: nestedDir },
      ]),
    );
    try {
      await call(d.clients.runtime, 'StartContainer', { container_id: id });
      // both layers, merged, the lower one's whited-out file hidden
      expect((await h.exec(id, ['cat', '/vol/data/a.txt', '/vol/data/sub/b.txt'])).out).toBe(
        'from layer one\nfrom layer two\n',
      );
      expect((await h.exec(id, ['ls', '/vol/data'])).out).not.toMatch(/gone\.txt/);
      expect((await h.exec(id, ['ls', '/sub'])).out.trim()).toBe('b.txt');
      expect((await h.exec(id, ['cat', '/one/c.txt'])).out).toBe('single layer\n');
      // a symlink in the sub-path resolves inside the image: /data/abs -> /data/sub
      expect((await h.exec(id, ['cat', '/linked/b.txt'])).out).toBe('from layer two\n');
      // writes fail with EROFS on every volume, whichever kind of mount backs it
      for (const f of ['/vol/data/new', '/sub/b.txt', '/one/c.txt']) {
        const w = await h.exec(id, ['sh', '-c', `echo x > ${f}`]);
        expect(w.code).not.toBe(0);
        expect(w.err).toMatch(/Read-only file system/);
      }
      // the image's files are untouched
      expect((await h.exec(id, ['cat', '/one/c.txt'])).out).toBe('single layer\n');
      const mountsInside = (await h.exec(id, ['cat', '/proc/self/mounts'])).out;
      for (const dest of ['/vol', '/sub', '/one', '/linked'])
        expect(mountsInside).toMatch(new RegExp(` ${dest} \\S+ ro[, ]`));

      const st = await call(d.clients.runtime, 'ContainerStatus', { container_id: id, verbose: true });
      const mounts = st.status!.mounts.filter((m) => m.image?.image);
      expect(mounts.map((m) => [m.container_path, m.image?.image, m.image_sub_path, m.readonly])).toEqual([
        ['/vol', dataImage, '', true],
        ['/sub', dataImage, 'data/sub', true],
        ['/one', oneLayer, 'only', true],
        ['/linked', dataImage, 'data/abs', true],
      ]);
      const info = JSON.parse(st.info.info) as { imageVolumes: { imageId: string; subPath: string }[] };
      expect(info.imageVolumes.map((v) => v.subPath)).toEqual(['', 'data/sub', 'only', 'data/sub']);
      expect(info.imageVolumes[0]!.imageId).toBe(dataImageId);
      expect(viewMounts()).toHaveLength(4);
      expect((await h.exec(id, ['cat', '/vol/data/empty/nested.txt'])).out).toBe('bound inside the volume\n');
      // berthctl inspect lists them
      const ins = await berthctl(d, ['inspect', '-o', 'json', id]);
      expect(ins.code).toBe(0);
      expect((JSON.parse(ins.stdout) as { imageVolumes: unknown }).imageVolumes).toEqual([
        { containerPath: '/vol', image: dataImage, subPath: '', readonly: true },
        { containerPath: '/sub', image: dataImage, subPath: 'data/sub', readonly: true },
        { containerPath: '/one', image: oneLayer, subPath: 'only', readonly: true },
        { containerPath: '/linked', image: dataImage, subPath: 'data/abs', readonly: true },
      ]);
    } finally {
      await remove(id);
    }
    // released with the container: views unmounted, their snapshots gone
    await until(
      'the image volume views are released',
      () => viewMounts().length === 0 && viewSnapshots().length === 0,
    );
  });

  test('refusals: NOT_FOUND for an image not pulled, INVALID_ARGUMENT for bad sub-paths; nothing left', async () => {
    const missing = await refused(withVolumes([volume('/v', `${h.reg.host}/lab/never:pulled`)]));
    expect(missing.code).toBe(Status.NOT_FOUND);
    expect(missing.details).toMatch(/lab\/never:pulled.*not present: pull it first/);
    for (const [sub, why] of [
      ['../..', /escapes the image through '\.\.'/],
      ['data/../../etc', /escapes the image/],
      ['data/escape', /escapes the image through the symlink data\/escape -> \.\.\/\.\.\/\.\./],
      ['data/nope', /does not exist in the image/],
      ['data/file', /is not a directory/],
      ['/data', /must be relative/],
    ] as const) {
      const r = await refused(withVolumes([volume('/v', dataImage, sub)]));
      expect({ sub, code: r.code }).toEqual({ sub, code: Status.INVALID_ARGUMENT });
      expect(r.details).toMatch(why);
    }
    // a mount inside an image volume needs its mount point in the (read-only) image
    const nested = await refused(
      withVolumes([volume('/v', dataImage, 'data'), { container_path: '/v/new', host_path: h.logDir }]),
    );
    expect(nested.code).toBe(Status.INVALID_ARGUMENT);
    expect(nested.details).toMatch(
      /mount \/v\/new: its mount point does not exist in the read-only image volume at \/v/,
    );
    // every refused create was rolled back: no view mounted, no view snapshot, no container
    await until(
      'refused creates are rolled back',
      () => viewMounts().length === 0 && viewSnapshots().length === 0,
    );
    expect((await call(d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
  });

  test('the volume survives a berthd restart and a kill -9, and is still released with the container', async () => {
    const id = await create(withVolumes([volume('/vol', dataImage, 'data')]));
    try {
      await call(d.clients.runtime, 'StartContainer', { container_id: id });
      await d.restart();
      expect((await h.exec(id, ['cat', '/vol/a.txt'])).out).toBe('from layer one\n');
      await d.kill9();
      await d.restart();
      expect((await h.exec(id, ['cat', '/vol/sub/b.txt'])).out).toBe('from layer two\n');
      const st = await call(d.clients.runtime, 'ContainerStatus', { container_id: id });
      expect(st.status!.mounts.find((m) => m.container_path === '/vol')?.image_sub_path).toBe('data');
      expect(viewMounts()).toHaveLength(1);
      // a view someone unmounted on the host is mounted again from the record at the next start
      await d.stop();
      for (const m of viewMounts()) execFileSync('umount', [m]);
      expect(viewMounts()).toHaveLength(0);
      await d.restart();
      expect(viewMounts()).toHaveLength(1);
      expect((await h.exec(id, ['cat', '/vol/a.txt'])).out).toBe('from layer one\n');
    } finally {
      await remove(id);
    }
    await until('the view is released', () => viewMounts().length === 0 && viewSnapshots().length === 0);
  });

  test('kill -9 right after the views are mounted: the restart rolls the create back', async () => {
    const before = { mounts: viewMounts(), snaps: viewSnapshots() };
    await d.restart({ BERTH_CRASH_AT: 'container-create:image-volumes-mounted' });
    await create(withVolumes([volume('/vol', dataImage)])).catch(() => undefined);
    await d.exited();
    expect(d.proc.signalCode).toBe('SIGKILL');
    expect(viewMounts()).toHaveLength(1); // what the crash left
    await d.restart({});
    expect({ mounts: viewMounts(), snaps: viewSnapshots() }).toEqual(before);
    expect((await call(d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
  });

  test('in a pod with its own user namespace the volume is owned by the pod root, still read-only', async () => {
    const ns = {
      userns_options: {
        mode: 'POD' as const,
        uids: [{ container_id: 0, host_id: 200000, length: 65536 }],
        gids: [{ container_id: 0, host_id: 200000, length: 65536 }],
      },
    };
    const upod = h.podConfig({ linux: { security_context: { namespace_options: ns } } });
    const upodId = await h.runPod(upod);
    try {
      const id = await h.startCtr(
        upodId,
        upod,
        h.ctrConfig('uv', ['sleep', '3600'], {
          mounts: [volume('/vol', dataImage, 'data')],
          linux: { security_context: { namespace_options: ns } },
        }),
      );
      expect((await h.exec(id, ['stat', '-c', '%u:%g', '/vol/a.txt'])).out.trim()).toBe('0:0');
      expect((await h.exec(id, ['cat', '/vol/sub/b.txt'])).out).toBe('from layer two\n');
      expect((await h.exec(id, ['sh', '-c', 'echo x > /vol/a.txt'])).err).toMatch(/Read-only file system/);
    } finally {
      await h.removePod(upodId);
    }
    await until('the view is released', () => viewMounts().length === 0 && viewSnapshots().length === 0);
  });

  test('an image in use by a volume: ImageStatus and RemoveImage behave as for a rootfs image', async () => {
    const vol = (
      await pushImage(h.reg, 'lab/volonly', 'v1', {
        layers: [
          makeTarSync([
            { path: 'v/', type: 'dir' },
            { path: 'v/x.txt', content: 'kept\n' },
          ]),
          makeTarSync([{ path: 'w/', type: 'dir' }]),
        ],
      })
    ).reference;
    const volId = (await call(d.clients.image, 'PullImage', { image: { image: vol } })).image_ref;
    const verbose = await call(d.clients.image, 'ImageStatus', { image: { image: vol }, verbose: true });
    const layerDirs = (JSON.parse(verbose.info.info) as { chainIDs: string[] }).chainIDs.map((c) =>
      path.join(d.root, 'snapshots', 'layers', c.slice('sha256:'.length)),
    );
    const id = await create(withVolumes([volume('/vol', vol, 'v')]));
    try {
      await call(d.clients.runtime, 'StartContainer', { container_id: id });
      // ImageStatus: reported the same way as the container's rootfs image (busybox)
      const asVolume = await call(d.clients.image, 'ImageStatus', { image: { image: vol }, verbose: true });
      const asRootfs = await call(d.clients.image, 'ImageStatus', {
        image: { image: h.busybox },
        verbose: true,
      });
      expect(asVolume.image?.pinned).toBe(asRootfs.image?.pinned);
      expect(asVolume.image?.pinned).toBe(false);
      expect(JSON.parse(asVolume.info.info).inUseBy).toEqual({ rootfs: [], volume: [id] });
      expect(JSON.parse(asRootfs.info.info).inUseBy.rootfs).toContain(id);
      // RemoveImage: the image (record, tags) goes as for a rootfs image; the layers stay while the
      // volume uses them, so the container keeps reading it
      await call(d.clients.image, 'RemoveImage', { image: { image: vol } });
      expect((await call(d.clients.image, 'ImageStatus', { image: { image: vol } })).image).toBeFalsy();
      expect((await h.exec(id, ['cat', '/vol/x.txt'])).out).toBe('kept\n');
      expect(layerDirs.every((l) => fs.existsSync(l))).toBe(true);
      // a new container cannot name it any more
      const again = await refused(withVolumes([volume('/vol', volId)]));
      expect(again.code).toBe(Status.NOT_FOUND);
    } finally {
      await remove(id);
    }
    await until('the view is released', () => viewMounts().length === 0 && viewSnapshots().length === 0);
    // with the container gone nothing holds the layers: the next removal's garbage collection frees them
    await call(d.clients.image, 'PullImage', { image: { image: vol } });
    expect((await call(d.clients.image, 'ImageStatus', { image: { image: vol } })).image?.id).toBe(volId);
    await call(d.clients.image, 'RemoveImage', { image: { image: vol } });
    expect(layerDirs.filter((l) => fs.existsSync(l))).toEqual([]);
  });
});
