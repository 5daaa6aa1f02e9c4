// The CRI ImageService end to end: berthd over its socket, berthctl, and a real registry
// (Debian's docker-registry) serving images built by the lab from busybox-static.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { call } from '../../api/client';
import { berthctl, startBerthd, type TestDaemon } from '../lab/berthd';
import { startRegistry, type LabRegistry } from '../lab/registry';
import { busyboxEntries, pushBusybox, pushImage, type PushedImage } from '../lab/images';
import { makeTar } from '../lab/tar';
import { startThrottleProxy } from '../lab/throttle';

let reg: LabRegistry;
let authReg: LabRegistry;
let d: TestDaemon;
let busybox: PushedImage;

beforeAll(async () => {
  reg = await startRegistry();
  authReg = await startRegistry({ auth: { kind: 'token', username: 'alice', password: 's3cret' } });
  busybox = await pushBusybox(reg);
  await pushImage(authReg, 'private/app', 'v1', {
    layers: [await makeTar(busyboxEntries())],
    config: { User: '1000:1000', Cmd: ['sh'] },
  });
  d = await startBerthd({ pause_image: `${reg.host}/pause:3.10` });
});

afterAll(async () => {
  await d?.cleanup();
  await reg?.stop();
  await authReg?.stop();
});

test('pull, list, inspect and remove through berthctl', async () => {
  const ref = `${reg.host}/library/busybox:latest`;
  const pulled = await berthctl(d, ['pull', ref]);
  expect(pulled.stderr).toBe('');
  expect(pulled.code).toBe(0);
  expect(pulled.stdout).toContain(busybox.configDigest);

  const list = await berthctl(d, ['images']);
  expect(list.stdout).toContain(`${reg.host}/library/busybox`);
  expect(list.stdout).toContain(busybox.configDigest.slice(7, 20));
  const q = await berthctl(d, ['images', '-q']);
  expect(q.stdout.trim().split('\n')).toContain(busybox.configDigest);
  const asJson = JSON.parse((await berthctl(d, ['images', '-o', 'json'])).stdout);
  const img = asJson.images.find((i: { id: string }) => i.id === busybox.configDigest);
  expect(img.repo_tags).toEqual([ref]);
  expect(img.repo_digests).toEqual([`${reg.host}/library/busybox@${busybox.manifestDigest}`]);
  expect(Number(img.size)).toBeGreaterThan(500_000);

  const insp = JSON.parse((await berthctl(d, ['inspecti', ref])).stdout);
  expect(insp.status.id).toBe(busybox.configDigest);
  expect(insp.info.imageSpec.rootfs.diff_ids).toHaveLength(busybox.layers.length);

  const rm = await berthctl(d, ['rmi', ref]);
  expect(rm.code).toBe(0);
  const st = await call(d.clients.image, 'ImageStatus', { image: { image: ref } });
  expect(st.image).toBeFalsy();
  const again = await berthctl(d, ['rmi', ref]);
  expect(again.code).toBe(1);
  expect(again.stderr).toContain('no such image');
});

test('ImageStatus finds an image by id, short id, name:tag and name@digest', async () => {
  const ref = `${reg.host}/library/busybox:latest`;
  const res = await call(d.clients.image, 'PullImage', { image: { image: ref } });
  expect(res.image_ref).toBe(busybox.configDigest);
  for (const key of [
    busybox.configDigest,
    busybox.configDigest.slice(7, 19),
    ref,
    `${reg.host}/library/busybox@${busybox.manifestDigest}`,
  ]) {
    const st = await call(d.clients.image, 'ImageStatus', { image: { image: key } });
    expect(st.image?.id).toBe(busybox.configDigest);
  }
  const missing = await call(d.clients.image, 'ImageStatus', {
    image: { image: `${reg.host}/nothing:here` },
  });
  expect(missing.image).toBeFalsy();
  // RemoveImage of something absent is success (CRI: idempotent)
  await call(d.clients.image, 'RemoveImage', { image: { image: `${reg.host}/nothing:here` } });
});

test('the pause image is pinned, and uid/username come from the image config', async () => {
  const { pushPause } = await import('../lab/images');
  await pushPause(reg);
  await call(d.clients.image, 'PullImage', { image: { image: `${reg.host}/pause:3.10` } });
  const p = await call(d.clients.image, 'ImageStatus', { image: { image: `${reg.host}/pause:3.10` } });
  expect(p.image?.pinned).toBe(true);
  const b = await call(d.clients.image, 'ImageStatus', {
    image: { image: `${reg.host}/library/busybox:latest` },
  });
  expect(b.image?.pinned).toBe(false);
});

test('credentials from the request: wrong ones are refused, right ones pull', async () => {
  const ref = `${authReg.host}/private/app:v1`;
  await expect(call(d.clients.image, 'PullImage', { image: { image: ref } })).rejects.toMatchObject({
    code: expect.any(Number),
  });
  const wrong = await berthctl(d, ['pull', '--creds', 'alice:nope', ref]);
  expect(wrong.code).toBe(1);
  expect(wrong.stderr.toLowerCase()).toMatch(/unauthori[sz]ed|authenticat|denied|credentials/);
  expect((await call(d.clients.image, 'ImageStatus', { image: { image: ref } })).image).toBeFalsy();
  const ok = await berthctl(d, ['pull', '--creds', 'alice:s3cret', ref]);
  expect(ok.stderr).toBe('');
  const st = await call(d.clients.image, 'ImageStatus', { image: { image: ref } });
  expect(st.image?.uid?.value).toBe('1000');
  expect(st.image?.username).toBe('');
});

test('ImageFsInfo counts the image filesystem', async () => {
  const r = await call(d.clients.image, 'ImageFsInfo', {});
  const fsu = r.image_filesystems[0];
  expect(Number(fsu.used_bytes?.value)).toBeGreaterThan(1_000_000);
  expect(Number(fsu.inodes_used?.value)).toBeGreaterThan(10);
  expect(fsu.fs_id?.mountpoint.startsWith('/')).toBe(true);
  expect(BigInt(fsu.timestamp)).toBeGreaterThan(0n);
});

test('a client that goes away mid-pull (its deadline) ends the download; nothing is registered', async () => {
  // the handler hears of it through grpc-js's 'cancelled' (server/rpc.ts CallContext)
  const pushed = await pushImage(reg, 'big/gone', 'v1', {
    layers: [await makeTar([{ path: 'data.bin', content: crypto.randomBytes(8 * 1024 * 1024) }])],
    compression: 'none',
  });
  const proxy = await startThrottleProxy(reg.url, 2 * 1024 * 1024);
  try {
    const ref = `${proxy.host}/big/gone:v1`;
    const err = (await call(d.clients.image, 'PullImage', { image: { image: ref } }, 1500).catch(
      (e: unknown) => e,
    )) as { code?: number };
    expect(err.code).toBe(4); // DEADLINE_EXCEEDED, at the client
    // the daemon stops reading: what the proxy sends levels off well short of the layer
    await new Promise((r) => setTimeout(r, 500));
    const settled = proxy.sent();
    await new Promise((r) => setTimeout(r, 1500));
    expect(proxy.sent() - settled).toBeLessThan(256 * 1024);
    expect(proxy.sent()).toBeLessThan(pushed.layers[0]!.size);
    expect((await call(d.clients.image, 'ImageStatus', { image: { image: ref } })).image).toBeFalsy();
  } finally {
    await proxy.stop();
  }
});

test('images survive a restart; kill -9 mid-pull leaves no image and no temp files', async () => {
  // ~8 MB of incompressible data served at 2 MB/s through a throttling proxy
  const big = crypto.randomBytes(8 * 1024 * 1024);
  const pushed = await pushImage(reg, 'big/blob', 'v1', {
    layers: [await makeTar([{ path: 'data.bin', content: big }])],
    compression: 'none',
  });
  const proxy = await startThrottleProxy(reg.url, 2 * 1024 * 1024);
  try {
    const ref = `${proxy.host}/big/blob:v1`;
    const pulling = call(d.clients.image, 'PullImage', { image: { image: ref } }).catch((e: unknown) => e);
    const deadline = Date.now() + 20_000;
    while (proxy.sent() < 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(proxy.sent()).toBeGreaterThan(0);
    await d.kill9();
    await pulling;
    await d.restart();
    expect((await call(d.clients.image, 'ImageStatus', { image: { image: ref } })).image).toBeFalsy();
    // busybox from the earlier tests is still there after the crash
    const b = await call(d.clients.image, 'ImageStatus', {
      image: { image: `${reg.host}/library/busybox:latest` },
    });
    expect(b.image?.id).toBe(busybox.configDigest);
    const leftovers: string[] = [];
    const walk = (dir: string, depth: number): void => {
      if (depth > 4 || !fs.existsSync(dir)) return;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.name.includes('.tmp-') || e.name.includes('partial')) leftovers.push(path.join(dir, e.name));
        if (e.isDirectory() && !/^[0-9a-f]{64}$/.test(e.name)) walk(path.join(dir, e.name), depth + 1);
      }
    };
    walk(d.root, 0);
    expect(leftovers).toEqual([]);
    // and the same pull now completes
    const res = await call(d.clients.image, 'PullImage', { image: { image: `${reg.host}/big/blob:v1` } });
    expect(res.image_ref).toBe(pushed.configDigest);
  } finally {
    await proxy.stop();
  }
});
