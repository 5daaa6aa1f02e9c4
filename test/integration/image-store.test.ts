// The image store against a real registry (Debian's docker-registry from the test lab) and the real
// overlay snapshotter: pulls by tag/digest/index, auth, mirrors, corruption, concurrency, sharing,
// removal, restart, stalls.
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { existsSync, promises as fsp } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../internal/config/config';
import { Status } from '../../internal/errors';
import { LocalImageStore } from '../../internal/image/store';
import type { OverlaySnapshotter } from '../../internal/snapshot/overlay';
import { openLabStore, rejection } from '../lab/image-store';
import {
  PASSWD_BASE,
  busyboxLayer,
  corruptBlob,
  hostPlatform,
  makeTarSync,
  pushBusybox,
  pushImage,
  pushIndex,
  startRegistry,
  putManifest,
  uploadBlob,
  sha256Digest,
  type LabRegistry,
  type PushedImage,
} from '../lab';

const roots: string[] = [];
const stores: LocalImageStore[] = [];

async function newRoot(): Promise<string> {
  const r = await fsp.mkdtemp(join(tmpdir(), 'berth-image-it-'));
  roots.push(r);
  return r;
}

async function openStore(
  root: string,
  patch?: (c: Config) => void,
): Promise<{ store: LocalImageStore; snap: OverlaySnapshotter; config: Config }> {
  const opened = await openLabStore(root, patch);
  stores.push(opened.store);
  return opened;
}

/** A loopback HTTP proxy in front of the registry that counts requests and can stall one blob. */
interface Proxy {
  url: string;
  host: string;
  count(re: RegExp): number;
  stop(): Promise<void>;
}

async function startProxy(
  upstream: string,
  opts: { stallDigest?: string; replace?: { path: RegExp; body: Buffer; type: string } } = {},
): Promise<Proxy> {
  const target = new URL(upstream);
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (opts.stallDigest && req.url?.endsWith(`/blobs/${opts.stallDigest}`)) {
      // Headers and a few bytes, then nothing: the pull must notice and give up.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': '1000000' });
      res.write(Buffer.alloc(1000));
      return;
    }
    if (opts.replace && opts.replace.path.test(req.url ?? '')) {
      res.writeHead(200, {
        'Content-Type': opts.replace.type,
        'Content-Length': String(opts.replace.body.length),
      });
      res.end(opts.replace.body);
      return;
    }
    const up = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    count: (re) => seen.filter((s) => re.test(s)).length,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let reg: LabRegistry;
let busybox: PushedImage;

beforeAll(async () => {
  reg = await startRegistry();
  busybox = await pushBusybox(reg);
});

afterAll(async () => {
  for (const s of stores) s.close();
  await reg?.stop();
  for (const r of roots) await fsp.rm(r, { recursive: true, force: true });
});

describe('pull', () => {
  it('pulls by tag and by digest, and finds the image every way', async () => {
    const { store, snap } = await openStore(await newRoot());
    const name = `${reg.host}/library/busybox`;
    const rec = await store.pull(`${name}:latest`);
    expect(rec.id).toBe(busybox.configDigest);
    expect(rec.repoTags).toEqual([`${name}:latest`]);
    expect(rec.repoDigests).toEqual([`${name}@${busybox.manifestDigest}`]);
    expect(rec.layers.map((l) => l.diffId)).toEqual(busybox.layers.map((l) => l.diffId));
    expect(rec.layers[0]?.chainId).toBe(busybox.layers[0]?.diffId);
    expect(rec.size).toBe(JSON.parse(busybox.manifest).config.size + busybox.layers[0]!.size);
    expect(await snap.hasLayer(rec.layers[0]!.chainId)).toBe(true);
    expect((await store.readFile(rec, '/etc/passwd'))?.toString()).toBe(PASSWD_BASE);
    expect(await store.readFile(rec, '/etc/nope')).toBeUndefined();

    const byDigest = await store.pull(`${name}@${busybox.manifestDigest}`);
    expect(byDigest.id).toBe(rec.id);
    expect(store.list()).toHaveLength(1);
    for (const q of [
      rec.id,
      rec.id.slice(7, 19),
      `${name}:latest`,
      `${name}@${busybox.manifestDigest}`,
      `${name}:v2@${busybox.manifestDigest}`,
    ])
      expect(store.get(q)?.id).toBe(rec.id);
    expect(store.get(`${name}:other`)).toBeUndefined();
    expect(store.list({ image: `${name}:latest` })).toHaveLength(1);
    expect(store.chainIds(rec)).toEqual([busybox.layers[0]!.diffId]);

    const usage = await store.fsUsage();
    expect(usage.bytes).toBeGreaterThan(busybox.layers[0]!.size);
    expect(usage.inodes).toBeGreaterThan(10);
    expect(usage.mountpoint.startsWith('/')).toBe(true);
  });

  it('verifies a digest reference and reports a missing one as NOT_FOUND', async () => {
    const { store } = await openStore(await newRoot());
    const wrong = `sha256:${'0'.repeat(64)}`;
    expect((await rejection(store.pull(`${reg.host}/library/busybox@${wrong}`))).code).toBe(Status.NOT_FOUND);
    expect((await rejection(store.pull(`${reg.host}/library/nothere:1`))).code).toBe(Status.NOT_FOUND);
    expect((await rejection(store.pull('Bad Ref'))).code).toBe(Status.INVALID_ARGUMENT);
  });

  it('selects the platform from an index, and names what an index offers when nothing fits', async () => {
    const amd = await pushImage(reg, 'multi-amd', 'v1', {
      layers: [busyboxLayer()],
      platform: hostPlatform(),
    });
    const arm = await pushImage(reg, 'multi-arm', 'v1', {
      layers: [makeTarSync([{ path: 'arm', content: 'arm64' }])],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      format: 'oci',
    });
    const idx = await pushIndex(reg, 'multi', 'v1', [arm, amd]);
    const { store } = await openStore(await newRoot());
    const rec = await store.pull(idx.reference);
    expect(rec.id).toBe(amd.configDigest);
    expect(rec.manifestDigest).toBe(idx.digest);
    expect(rec.platformManifestDigest).toBe(amd.manifestDigest);
    expect(rec.repoDigests).toEqual([`${reg.host}/multi@${idx.digest}`]);

    const { store: armStore } = await openStore(await newRoot(), (c) => (c.image.platform = 'linux/arm64'));
    expect((await armStore.pull(idx.reference)).id).toBe(arm.configDigest);

    const armOnly = await pushIndex(reg, 'armonly', 'v1', [arm], 'docker');
    const err = await rejection(store.pull(armOnly.reference));
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.message).toContain('no manifest for platform linux/amd64; available: linux/arm64/v8');
  });

  it('applies a multi-layer image with whiteouts and opaque dirs', async () => {
    const lower = makeTarSync([
      { path: 'data/', type: 'dir' },
      { path: 'data/a', content: 'A' },
      { path: 'data/b', content: 'B' },
      { path: 'etc/', type: 'dir' },
      { path: 'etc/old', content: 'old' },
    ]);
    const upper = makeTarSync([
      { path: 'data/', type: 'dir' },
      { path: 'data/.wh.a', content: '' },
      { path: 'etc/', type: 'dir' },
      { path: 'etc/.wh..wh..opq', content: '' },
      { path: 'etc/passwd', content: 'upper-passwd' },
    ]);
    const img = await pushImage(reg, 'layered', 'v1', {
      layers: [busyboxLayer(), lower, upper],
      format: 'oci',
      compression: 'none',
    });
    const { store, snap } = await openStore(await newRoot());
    const rec = await store.pull(img.reference);
    expect(rec.layers).toHaveLength(3);
    for (const c of store.chainIds(rec)) expect(await snap.hasLayer(c)).toBe(true);
    const read = async (p: string): Promise<string | undefined> => (await store.readFile(rec, p))?.toString();
    expect(await read('/data/a')).toBeUndefined();
    expect(await read('/data/b')).toBe('B');
    expect(await read('/etc/passwd')).toBe('upper-passwd');
    expect(await read('/etc/old')).toBeUndefined();
    expect(await read('/etc/group')).toBeUndefined();
    expect(await read('/bin/sh')).toBeDefined(); // via the busybox symlink
  });

  it('refuses zstd layers with a clear error and registers nothing', async () => {
    const img = await pushImage(reg, 'zstd', 'v1', {
      layers: [makeTarSync([{ path: 'z', content: 'z' }])],
      compression: 'zstd',
      format: 'oci',
    });
    const { store } = await openStore(await newRoot());
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.FAILED_PRECONDITION);
    expect(err.message).toMatch(/zstd/);
    expect(store.list()).toHaveLength(0);
  });

  it('marks the configured pause image pinned', async () => {
    const { store } = await openStore(
      await newRoot(),
      (c) => (c.pause_image = `${reg.host}/library/busybox`),
    );
    const rec = await store.pull(`${reg.host}/library/busybox:latest`);
    expect(store.isPinned(rec)).toBe(true);
  });
});

describe('auth', () => {
  it('basic auth: right credentials from the request or config pass, wrong or none are UNAUTHENTICATED', async () => {
    const areg = await startRegistry({ auth: { kind: 'basic', username: 'alice', password: 's3cret' } });
    try {
      const img = await pushBusybox(areg);
      const { store } = await openStore(await newRoot());
      expect((await rejection(store.pull(img.reference))).code).toBe(Status.UNAUTHENTICATED);
      const wrong = await rejection(
        store.pull(img.reference, { credentials: { username: 'alice', password: 'nope' } }),
      );
      expect(wrong.code).toBe(Status.UNAUTHENTICATED);
      expect(store.list()).toHaveLength(0);
      const rec = await store.pull(img.reference, { credentials: { username: 'alice', password: 's3cret' } });
      expect(rec.id).toBe(img.configDigest);

      const { store: cfgStore } = await openStore(await newRoot(), (c) => {
        c.registry.auths[areg.host] = { auth: Buffer.from('alice:s3cret').toString('base64') };
      });
      expect((await cfgStore.pull(img.reference)).id).toBe(img.configDigest);
    } finally {
      await areg.stop();
    }
  });

  it('token auth: fetches and caches a Bearer token; wrong credentials are UNAUTHENTICATED', async () => {
    const treg = await startRegistry({ auth: { kind: 'token', username: 'bob', password: 'tok-pass' } });
    try {
      const img = await pushBusybox(treg);
      const { store } = await openStore(await newRoot());
      const wrong = await rejection(
        store.pull(img.reference, { credentials: { username: 'bob', password: 'bad' } }),
      );
      expect(wrong.code).toBe(Status.UNAUTHENTICATED);
      expect(wrong.message).toMatch(/token server/);
      expect((await rejection(store.pull(img.reference))).code).toBe(Status.UNAUTHENTICATED);
      const before = treg.token!.requests();
      const creds = { credentials: { username: 'bob', password: 'tok-pass' } };
      expect((await store.pull(img.reference, creds)).id).toBe(img.configDigest);
      expect((await store.pull(img.reference, creds)).id).toBe(img.configDigest);
      // One token for the scope, reused by the second pull.
      expect(treg.token!.requests() - before).toBe(1);
    } finally {
      await treg.stop();
    }
  });
});

describe('mirrors', () => {
  it('pulls through a mirror (after a dead one) and keeps the original name', async () => {
    const dead = await startProxy(reg.url);
    await dead.stop(); // a closed loopback port
    const { store } = await openStore(await newRoot(), (c) => {
      c.registry.mirrors['registry.example.test'] = [dead.url, reg.url];
    });
    const rec = await store.pull('registry.example.test/library/busybox:latest');
    expect(rec.id).toBe(busybox.configDigest);
    expect(rec.repoTags).toEqual(['registry.example.test/library/busybox:latest']);
    expect(rec.repoDigests).toEqual([`registry.example.test/library/busybox@${busybox.manifestDigest}`]);
    expect(store.get('registry.example.test/library/busybox')?.id).toBe(rec.id);
  });

  it('falls through a mirror that lacks the image to the upstream', async () => {
    const empty = await startRegistry();
    try {
      const { store } = await openStore(await newRoot(), (c) => {
        c.registry.mirrors[reg.host] = [empty.url];
      });
      expect((await store.pull(`${reg.host}/library/busybox:latest`)).id).toBe(busybox.configDigest);
    } finally {
      await empty.stop();
    }
  });
});

describe('failures and concurrency', () => {
  it('a corrupted blob fails the pull with DATA_LOSS naming the digest, and leaves nothing behind', async () => {
    const img = await pushImage(reg, 'corrupt', 'v1', {
      layers: [busyboxLayer(), makeTarSync([{ path: 'only-here', content: 'x'.repeat(5000) }])],
    });
    await corruptBlob(reg, img.layers[1]!.digest);
    const root = await newRoot();
    const { store, snap } = await openStore(root);
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.DATA_LOSS);
    expect(err.message).toContain(img.layers[1]!.digest);
    expect(store.list()).toHaveLength(0);
    expect(await fsp.readdir(join(root, 'images'))).toEqual([]);
    expect(await fsp.readdir(join(root, 'content', 'ingest'))).toEqual([]);
    expect(existsSync(join(root, 'content/blobs/sha256', img.layers[1]!.digest.slice(7)))).toBe(false);
    // the layer below may have been unpacked, the corrupted one was not
    expect(await snap.listLayers()).not.toContain(
      (await import('../../internal/image/manifest')).chainIds(img.layers.map((l) => l.diffId))[1],
    );
    // a restart frees what the failed pull left
    const again = await openStore(root);
    expect(await again.snap.listLayers()).toEqual([]);
  });

  it('a layer whose content does not match the diff_id in the config is refused and not kept', async () => {
    const tar = makeTarSync([{ path: 'f', content: 'real content' }]);
    const layerDigest = await uploadBlob(reg, 'badiff', tar);
    const config = Buffer.from(
      JSON.stringify({
        architecture: hostPlatform().architecture,
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [sha256Digest('something else')] },
      }),
    );
    const configDigest = await uploadBlob(reg, 'badiff', config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: configDigest,
          size: config.length,
        },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: tar.length },
        ],
      }),
    );
    await putManifest(reg, 'badiff', 'v1', manifest, 'application/vnd.oci.image.manifest.v1+json');
    const { store, snap } = await openStore(await newRoot());
    const err = await rejection(store.pull(`${reg.host}/badiff:v1`));
    expect(err.code).toBe(Status.DATA_LOSS);
    expect(err.message).toContain('diff_id');
    expect(await snap.listLayers()).toEqual([]);
    expect(store.list()).toHaveLength(0);
  });

  it('a manifest that does not match the digest asked for is refused', async () => {
    const other = Buffer.from(busybox.manifest.replace('"schemaVersion": 2', '"schemaVersion":2'));
    const proxy = await startProxy(reg.url, {
      replace: { path: /\/manifests\/sha256:/, body: other, type: busybox.manifestMediaType },
    });
    try {
      const { store } = await openStore(await newRoot());
      const err = await rejection(store.pull(`${proxy.host}/library/busybox@${busybox.manifestDigest}`));
      expect(err.code).toBe(Status.DATA_LOSS);
      expect(err.message).toContain(
        `manifest ${proxy.host}/library/busybox@${busybox.manifestDigest} failed verification`,
      );
    } finally {
      await proxy.stop();
    }
  });

  it('ten concurrent pulls of one image download it once and all succeed', async () => {
    const proxy = await startProxy(reg.url);
    try {
      const { store } = await openStore(await newRoot());
      const ref = `${proxy.host}/library/busybox:latest`;
      const recs = await Promise.all(Array.from({ length: 10 }, () => store.pull(ref)));
      for (const r of recs) expect(r.id).toBe(busybox.configDigest);
      expect(proxy.count(/\/blobs\//)).toBe(2); // config + one layer
      expect(proxy.count(/\/manifests\//)).toBe(1);
      // an existing image: the manifest is checked again, no blob is fetched
      await store.pull(ref);
      expect(proxy.count(/\/blobs\//)).toBe(2);
    } finally {
      await proxy.stop();
    }
  });

  it('cancels a pull whose bytes stop moving (DEADLINE_EXCEEDED) and registers nothing', async () => {
    const img = await pushImage(reg, 'stall', 'v1', {
      layers: [makeTarSync([{ path: 'big', content: randomBytes(300_000) }])],
    });
    const proxy = await startProxy(reg.url, { stallDigest: img.layers[0]!.digest });
    try {
      const root = await newRoot();
      const { store } = await openStore(root, (c) => {
        c.image.pull_progress_timeout_seconds = 2;
        c.image.pull_progress_min_bytes_per_second = 100;
      });
      const t0 = Date.now();
      const err = await rejection(store.pull(`${proxy.host}/stall:v1`));
      expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
      expect(err.message).toMatch(/no progress for 2s/);
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(store.list()).toHaveLength(0);
      expect(await fsp.readdir(join(root, 'content', 'ingest'))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('a caller that aborts gets CANCELLED', async () => {
    const img = await pushImage(reg, 'stall2', 'v1', {
      layers: [makeTarSync([{ path: 'x', content: randomBytes(10_000) }])],
    });
    const proxy = await startProxy(reg.url, { stallDigest: img.layers[0]!.digest });
    try {
      const { store } = await openStore(await newRoot());
      const ac = new AbortController();
      const p = store.pull(`${proxy.host}/stall2:v1`, { signal: ac.signal });
      setTimeout(() => ac.abort(), 300);
      expect((await rejection(p)).code).toBe(Status.CANCELLED);
    } finally {
      await proxy.stop();
    }
  });
});

describe('sharing, removal, restart', () => {
  it('shares layers, removes an image by one tag with all its tags, frees only what no other image uses (blobs kept)', async () => {
    const a = await pushImage(reg, 'share-a', 'v1', {
      layers: [busyboxLayer(), makeTarSync([{ path: 'a', content: 'A' }])],
    });
    const b = await pushImage(reg, 'share-b', 'v1', {
      layers: [busyboxLayer(), makeTarSync([{ path: 'b', content: 'B' }])],
    });
    await pushImage(reg, 'share-a', 'v2', {
      layers: [busyboxLayer(), makeTarSync([{ path: 'a', content: 'A' }])],
    });
    const root = await newRoot();
    const { store, snap } = await openStore(root, (c) => (c.image.discard_unpacked_layers = false));
    const ra = await store.pull(a.reference);
    await store.pull(`${reg.host}/share-a:v2`);
    const rb = await store.pull(b.reference);
    expect(store.get(a.reference)?.repoTags.sort()).toEqual([
      `${reg.host}/share-a:v1`,
      `${reg.host}/share-a:v2`,
    ]);
    const base = ra.layers[0]!.chainId;
    expect(rb.layers[0]!.chainId).toBe(base);
    expect((await snap.listLayers()).sort()).toEqual(
      [base, ra.layers[1]!.chainId, rb.layers[1]!.chainId].sort(),
    );

    // a container snapshot on b's layers keeps them even when b goes
    await snap.prepare('ctr1', store.chainIds(rb));
    // by one tag while another is left: the image goes with both tags (cri-api main's RemoveImage),
    // its own layer and blob go, the shared base stays
    await store.remove(`${reg.host}/share-a:v1`);
    expect(store.get(ra.id)).toBeUndefined();
    expect(store.get(`${reg.host}/share-a:v2`)).toBeUndefined();
    expect(await snap.hasLayer(ra.layers[1]!.chainId)).toBe(false);
    expect(await snap.hasLayer(base)).toBe(true);
    expect(await store.content.has(ra.layers[1]!.digest)).toBe(false);
    expect(await store.content.has(rb.layers[1]!.digest)).toBe(true);
    expect(await store.content.has(ra.layers[0]!.digest)).toBe(true);

    await store.remove(rb.id);
    expect(store.list()).toHaveLength(0);
    expect((await snap.listLayers()).sort()).toEqual([base, rb.layers[1]!.chainId].sort()); // in use by ctr1
    expect(await store.content.list()).toEqual([]);
    await snap.remove('ctr1');
    await store.remove(rb.id); // missing: no error
  });

  it('a pull of an image whose layers exist downloads no layer (blobs kept: it points at the stored blob)', async () => {
    // same layer tar, different compression → same chain, different blob
    const gz = await pushImage(reg, 'comp-gz', 'v1', { layers: [busyboxLayer()] });
    const raw = await pushImage(reg, 'comp-raw', 'v1', {
      layers: [busyboxLayer()],
      compression: 'none',
      config: { Cmd: ['true'] },
    });
    const proxy = await startProxy(reg.url);
    try {
      const { store } = await openStore(await newRoot(), (c) => (c.image.discard_unpacked_layers = false));
      await store.pull(`${proxy.host}/comp-gz:v1`);
      const rec = await store.pull(`${proxy.host}/comp-raw:v1`);
      expect(proxy.count(new RegExp(raw.layers[0]!.digest))).toBe(0);
      expect(rec.layers[0]!.storedDigest).toBe(gz.layers[0]!.digest);
      await store.remove(`${proxy.host}/comp-gz:v1`);
      expect((await store.readFile(rec, '/etc/passwd'))?.toString()).toBe(PASSWD_BASE);
    } finally {
      await proxy.stop();
    }
  });

  it('by default keeps no layer blob: layers stream into their snapshots, present ones are not fetched, files read from the layers', async () => {
    const motd = makeTarSync([
      { path: 'etc/', type: 'dir' },
      { path: 'etc/motd', content: 'hi' },
    ]);
    const gz = await pushImage(reg, 'discard-gz', 'v1', { layers: [busyboxLayer(), motd] });
    const raw = await pushImage(reg, 'discard-raw', 'v1', {
      layers: [busyboxLayer()],
      compression: 'none',
      config: { Cmd: ['true'] },
    });
    // the top layer of discard-gz on other parents: same blob, another chain ID
    const moved = await pushImage(reg, 'discard-moved', 'v1', { layers: [motd] });
    expect(moved.layers[0]!.digest).toBe(gz.layers[1]!.digest);
    const proxy = await startProxy(reg.url);
    try {
      const root = await newRoot();
      const { store } = await openStore(root);
      const rec = await store.pull(`${proxy.host}/discard-gz:v1`);
      expect(proxy.count(/\/blobs\//)).toBe(3); // config + two layers
      // only the manifest and the config are stored
      expect((await store.content.list()).sort()).toEqual([gz.configDigest, gz.manifestDigest].sort());
      expect(await fsp.readdir(join(root, 'content', 'ingest'))).toEqual([]);
      expect((await store.readFile(rec, '/etc/passwd'))?.toString()).toBe(PASSWD_BASE);
      expect((await store.readFile(rec, '/etc/motd'))?.toString()).toBe('hi');

      // the same again, and another image on the same layer: no layer blob is fetched
      await store.pull(`${proxy.host}/discard-gz:v1`);
      const r2 = await store.pull(`${proxy.host}/discard-raw:v1`);
      expect(proxy.count(/\/blobs\//)).toBe(4); // + discard-raw's config
      expect(proxy.count(new RegExp(raw.layers[0]!.digest))).toBe(0);
      expect(r2.layers[0]!.storedDigest).toBeUndefined();
      await store.remove(`${proxy.host}/discard-gz:v1`);
      expect((await store.readFile(r2, '/etc/passwd'))?.toString()).toBe(PASSWD_BASE);

      // a blob seen before but not kept is downloaded again where its chain is new
      const r3 = await store.pull(`${proxy.host}/discard-moved:v1`);
      expect(proxy.count(new RegExp(gz.layers[1]!.digest))).toBe(2);
      expect((await store.readFile(r3, '/etc/motd'))?.toString()).toBe('hi');
      expect((await store.readFile(r3, '/etc/passwd'))?.toString()).toBeUndefined();
    } finally {
      await proxy.stop();
    }
  });

  it('moves a tag to the newer image and keeps the old one by digest', async () => {
    const v1 = await pushImage(reg, 'moving', 'latest', {
      layers: [makeTarSync([{ path: 'v', content: '1' }])],
    });
    const { store } = await openStore(await newRoot());
    const old = await store.pull(v1.reference);
    const v2 = await pushImage(reg, 'moving', 'latest', {
      layers: [makeTarSync([{ path: 'v', content: '2' }])],
    });
    const cur = await store.pull(v2.reference);
    expect(cur.id).not.toBe(old.id);
    expect(store.get(v1.reference)?.id).toBe(cur.id);
    expect(store.get(old.id)?.repoTags).toEqual([]);
    expect(store.get(`${reg.host}/moving@${v1.manifestDigest}`)?.id).toBe(old.id);
    expect((await store.readFile(cur, '/v'))?.toString()).toBe('2');
  });

  it('survives a restart; quarantines a corrupt record; cleans temp files', async () => {
    const root = await newRoot();
    const { store } = await openStore(root);
    const rec = await store.pull(busybox.reference);
    // leftovers of a kill -9: an ingest file, a record temp file, an unreferenced blob, a corrupt record
    await fsp.writeFile(join(root, 'content', 'ingest', 'abc-123'), 'partial');
    await fsp.writeFile(join(root, 'images', `${'b'.repeat(64)}.json.tmp-123`), '{');
    await fsp.writeFile(join(root, 'content', 'blobs', 'sha256', 'c'.repeat(64)), 'orphan');
    await fsp.writeFile(join(root, 'images', `${'d'.repeat(64)}.json`), '{not json');

    const { store: again } = await openStore(root);
    const back = again.get(busybox.reference);
    expect(back?.id).toBe(rec.id);
    expect(back?.repoDigests).toEqual(rec.repoDigests);
    expect((await again.readFile(back!, '/etc/passwd'))?.toString()).toBe(PASSWD_BASE);
    expect(await fsp.readdir(join(root, 'content', 'ingest'))).toEqual([]);
    const names = await fsp.readdir(join(root, 'images'));
    expect(names).toContain(`${rec.id.slice(7)}.json`);
    expect(names.some((n) => n.startsWith(`${'d'.repeat(64)}.json.corrupt-`))).toBe(true);
    expect(names.some((n) => n.includes('.tmp-'))).toBe(false);
    expect(await again.content.has(`sha256:${'c'.repeat(64)}`)).toBe(false);
  });
});

describe('streamed and parallel unpack', () => {
  /** Layers of random bytes (gzip cannot shrink them): big enough to take many network reads. */
  const bigLayers = (n: number, mb: number): Buffer[] =>
    Array.from({ length: n }, (_, i) => makeTarSync([{ path: `big${i}`, content: randomBytes(mb << 20) }]));

  it('each layer unpacks while its blob downloads, several at once, and they commit in order', async () => {
    const img = await pushImage(reg, 'streamed', 'v1', { layers: [busyboxLayer(), ...bigLayers(3, 4)] });
    const root = await newRoot();
    const { store, snap } = await openStore(root, (c) => (c.image.max_concurrent_downloads = 3));
    const chains = (await import('../../internal/image/manifest')).chainIds(img.layers.map((l) => l.diffId));
    const seen: { chainId: string; blobStored: boolean }[] = [];
    let running = 0;
    let overlapped = false;
    // Layer 1's unpack may only finish once another layer's unpack has started: with applies one
    // after the other (as before) it would never finish, so the wait is bounded and then fails.
    let release!: () => void;
    const other = new Promise<void>((r) => (release = r));
    const stage = snap.stageLayer.bind(snap);
    snap.stageLayer = async (chainId, tar, opts) => {
      const i = chains.indexOf(chainId);
      const layer = img.layers[i]!;
      seen.push({ chainId, blobStored: await store.content.has(layer.digest) });
      running++;
      if (running > 1) overlapped = true;
      if (i !== 1) release();
      try {
        const staged = await stage(chainId, tar, opts);
        if (i === 1) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([other, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
          clearTimeout(timer);
        }
        return staged;
      } finally {
        running--;
      }
    };
    const rec = await store.pull(img.reference);
    expect(rec.layers.map((l) => l.chainId)).toEqual(chains);
    expect(seen.map((s) => s.chainId).sort()).toEqual([...chains].sort());
    // the unpack started before the blob was in the content store: it streamed from the download
    expect(seen.every((s) => !s.blobStored)).toBe(true);
    expect(overlapped).toBe(true);
    // and no layer blob is kept (image.discard_unpacked_layers, the default)
    for (const l of img.layers) expect(await store.content.has(l.digest)).toBe(false);
    expect(new Set(await snap.listLayers())).toEqual(new Set(chains));
    const metaOf = async (c: string): Promise<{ parent?: string }> =>
      JSON.parse(await fsp.readFile(join(root, 'snapshots/layers', c.slice(7), 'meta.json'), 'utf8')) as {
        parent?: string;
      };
    for (let i = 1; i < chains.length; i++) expect((await metaOf(chains[i]!)).parent).toBe(chains[i - 1]);
    expect((await fsp.readdir(join(root, 'snapshots/layers'))).some((n) => n.includes('.tmp-'))).toBe(false);
  });

  it('the per-image unpack bound holds when layers unpack in parallel, and nothing stays', async () => {
    const img = await pushImage(reg, 'parallel-bound', 'v1', { layers: bigLayers(3, 2) });
    const root = await newRoot();
    // each layer alone passes (2 MiB + tar headers), the three together do not
    const { store, snap } = await openStore(root, (c) => {
      c.image.max_concurrent_downloads = 3;
      c.image.max_image_uncompressed_bytes = 5 << 20;
    });
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/per-image limit/);
    expect(await snap.listLayers()).toEqual([]);
    expect(await fsp.readdir(join(root, 'snapshots/layers'))).toEqual([]);
    expect(await fsp.readdir(join(root, 'content', 'ingest'))).toEqual([]);
    expect(await store.content.list()).toEqual([]);
  });
});
