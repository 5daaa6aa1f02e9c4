// Hostile registries (test/lab/hostile-registry.ts) against the image store and the real overlay
// snapshotter: every pulled byte checked against a digest (DATA_LOSS, nothing stored or tagged),
// bounded unpacking (RESOURCE_EXHAUSTED, the partial layer gone before the error returns), bounded
// manifests and configs, and pull errors that name every endpoint tried.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readdirSync, readlinkSync, statSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import type { Config } from '../../internal/config/config';
import { Status } from '../../internal/errors';
import { LocalImageStore } from '../../internal/image/store';
import type { OverlaySnapshotter } from '../../internal/snapshot/overlay';
import { openLabStore, rejection } from '../lab/image-store';
import {
  type HostileRegistry,
  type HostileLayer,
  gzipBomb,
  hostileImage,
  hostileIndex,
  sha256,
  startHostileRegistry,
  tarLayer,
} from '../lab/hostile-registry';
import { call } from '../../api/client';
import { hostPlatform, makeTarSync, startRegistry, type LabRegistry } from '../lab';
import { berthctl, startBerthd, type TestDaemon } from '../lab/berthd';
import { procStatusKb } from '../lab/proc';

/** How much berthd's RSS may grow across a pull of a huge config ("a few MB"). */
const RSS_SLACK = 8 * 1024 * 1024;

const roots: string[] = [];
const stores: LocalImageStore[] = [];
let reg: HostileRegistry;

beforeAll(async () => {
  reg = await startHostileRegistry();
});

afterAll(async () => {
  for (const s of stores) s.close();
  await reg?.stop();
  for (const r of roots) await fsp.rm(r, { recursive: true, force: true });
});

async function openStore(
  patch: (c: Config) => void = () => undefined,
  existing?: string,
): Promise<{ store: LocalImageStore; snap: OverlaySnapshotter; root: string }> {
  const root = existing ?? (await fsp.mkdtemp(join(tmpdir(), 'berth-integrity-it-')));
  if (!existing) roots.push(root);
  const { store, snap } = await openLabStore(root, patch);
  stores.push(store);
  return { store, snap, root };
}

/** What a store holds on disk: blobs, layers (and their temp dirs), image records. */
async function stored(root: string): Promise<{ blobs: string[]; layers: string[]; images: string[] }> {
  const ls = (p: string): Promise<string[]> => fsp.readdir(p).catch(() => []);
  return {
    blobs: await ls(join(root, 'content/blobs/sha256')),
    layers: await ls(join(root, 'snapshots/layers')),
    images: await ls(join(root, 'images')),
  };
}

const nothing = { blobs: [], layers: [], images: [] };

function gz(tar: Buffer): HostileLayer {
  return { blob: zlib.gzipSync(tar), diffId: sha256(tar) };
}

const small = (name: string, content = `content of ${name}`): HostileLayer =>
  gz(makeTarSync([{ path: name, content }]));

describe('every pulled byte is verified', () => {
  it('a manifest by tag whose Docker-Content-Digest lies: DATA_LOSS naming the reference and both digests; nothing stored', async () => {
    const img = hostileImage(reg, 'lying/header', 'v1', [small('a')]);
    const liar = `sha256:${'1'.repeat(64)}`;
    reg.manifests.set('lying/header:v1', {
      body: img.manifest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digestHeader: liar,
    });
    const { store, root } = await openStore();
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.DATA_LOSS);
    expect(err.message).toContain(img.reference);
    expect(err.message).toContain(liar);
    expect(err.message).toContain(img.manifestDigest);
    expect(await stored(root)).toEqual(nothing);

    // no header at all: nothing to check against, the pull goes through; the true one passes too
    reg.manifests.set('lying/header:v1', {
      body: img.manifest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digestHeader: null,
    });
    expect((await store.pull(img.reference)).id).toBe(img.configDigest);
    reg.manifests.set('lying/header:v1', {
      body: img.manifest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
    });
    expect((await store.pull(img.reference)).id).toBe(img.configDigest);
  });

  it('a re-pull of a tag whose manifest now fails its check keeps the tag on the old image', async () => {
    const old = hostileImage(reg, 'retag/app', 'v1', [small('old')]);
    const { store } = await openStore();
    await store.pull(old.reference);
    const newer = hostileImage(reg, 'retag/app', 'v2', [small('new')]);
    reg.manifests.set('retag/app:v1', {
      body: newer.manifest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digestHeader: old.manifestDigest,
    });
    expect((await rejection(store.pull(old.reference))).code).toBe(Status.DATA_LOSS);
    expect(store.get(old.reference)?.id).toBe(old.configDigest);
    expect(store.list()).toHaveLength(1);
  });

  it('a manifest by digest and an index entry that do not match their digests', async () => {
    const img = hostileImage(reg, 'bydigest/app', 'v1', [small('d')]);
    const other = Buffer.from(img.manifest.toString().replace('"schemaVersion":2', '"schemaVersion": 2'));
    reg.manifests.set(`bydigest/app:${img.manifestDigest}`, {
      body: other,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digestHeader: null,
    });
    const { store, root } = await openStore();
    const byDigest = await rejection(store.pull(`${reg.host}/bydigest/app@${img.manifestDigest}`));
    expect(byDigest.code).toBe(Status.DATA_LOSS);
    expect(byDigest.message).toContain(`${reg.host}/bydigest/app@${img.manifestDigest}`);
    expect(byDigest.message).toContain(sha256(other));

    hostileIndex(reg, 'bydigest/app', 'multi', [img]);
    const viaIndex = await rejection(store.pull(`${reg.host}/bydigest/app:multi`));
    expect(viaIndex.code).toBe(Status.DATA_LOSS);
    expect(viaIndex.message).toMatch(/platform manifest/);
    expect(viaIndex.message).toContain(img.manifestDigest);
    expect(viaIndex.message).toContain(sha256(other));
    expect(await stored(root)).toEqual(nothing);
  });

  it('a config or a layer served with other bytes: DATA_LOSS naming the image; the layers and blobs already stored are removed', async () => {
    const img = hostileImage(reg, 'badblob/app', 'v1', [small('one'), small('two'), small('three')]);
    const good = reg.blobs.get(img.layerDigests[2]!)!;
    const bad = Buffer.from(good);
    bad[bad.length - 5] ^= 0xff;
    reg.blobs.set(img.layerDigests[2]!, bad);
    const { store, root } = await openStore((c) => (c.image.max_concurrent_downloads = 1));
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.DATA_LOSS);
    expect(err.message).toContain(img.reference);
    expect(err.message).toContain(img.layerDigests[2]);
    expect(err.message).toContain(sha256(bad));
    // the config and the two good layers were stored before the bad one: all gone
    expect(await stored(root)).toEqual(nothing);
    reg.blobs.set(img.layerDigests[2]!, good);

    const cfgGood = reg.blobs.get(img.configDigest)!;
    reg.blobs.set(img.configDigest, Buffer.from(cfgGood.toString().replace('PATH=/bin', 'PATH=/usr')));
    const cfgErr = await rejection(store.pull(img.reference));
    expect(cfgErr.code).toBe(Status.DATA_LOSS);
    expect(cfgErr.message).toContain(img.configDigest);
    expect(await stored(root)).toEqual(nothing);
    reg.blobs.set(img.configDigest, cfgGood);
    expect((await store.pull(img.reference)).id).toBe(img.configDigest);
  });
});

/** Paths under `root` this process holds open (a refused layer's files must all be closed). */
function openFilesUnder(root: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const t = readlinkSync(`/proc/self/fd/${fd}`);
      if (t.startsWith(root)) out.push(t);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe('bounded unpacking', () => {
  it('a gzip bomb is refused by the default ratio limit (RESOURCE_EXHAUSTED naming the layer); its partial layer is gone', async () => {
    const bomb = gzipBomb(160);
    expect((160 * 1024 * 1024) / bomb.blob.length).toBeGreaterThan(1000);
    const img = hostileImage(reg, 'bomb/ratio', 'v1', [small('base'), bomb]);
    const { store, root } = await openStore();
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.message).toContain(`layer ${img.layerDigests[1]}`);
    expect(err.message).toContain(img.reference);
    expect(err.message).toMatch(/more than 1000x its compressed size.*image\.max_layer_compression_ratio/);
    // no temp dir of the refused layer, no layer, no blob, nothing held open
    expect(await stored(root)).toEqual(nothing);
    expect(openFilesUnder(root)).toEqual([]);
  });

  it('per-layer and per-image limits (config keys)', async () => {
    const MiB = 1024 * 1024;
    const big = (name: string): HostileLayer =>
      tarLayer(makeTarSync([{ path: name, content: randomBytes(3 * MiB) }]));
    // layers unpack in parallel: the per-layer case has one layer over the bound, so the refusal
    // names it whatever order the two streams run in
    const oneBig = hostileImage(reg, 'bomb/onebig', 'v1', [small('a'), big('b')]);
    const perLayer = await openStore((c) => (c.image.max_layer_uncompressed_bytes = 2 * MiB));
    const e1 = await rejection(perLayer.store.pull(oneBig.reference));
    expect(e1.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(e1.message).toContain(`layer ${oneBig.layerDigests[1]}`);
    expect(e1.message).toMatch(/per-layer limit \(image\.max_layer_uncompressed_bytes\)/);
    expect(await stored(perLayer.root)).toEqual(nothing);

    const img = hostileImage(reg, 'bomb/limits', 'v1', [big('a'), big('b')]);

    const perImage = await openStore((c) => (c.image.max_image_uncompressed_bytes = 5 * MiB));
    const e2 = await rejection(perImage.store.pull(img.reference));
    expect(e2.code).toBe(Status.RESOURCE_EXHAUSTED);
    // whichever of the two parallel layers carries the count past 5 MiB is the one named
    expect(img.layerDigests.some((d) => e2.message.includes(`layer ${d}`))).toBe(true);
    expect(e2.message).toMatch(/per-image limit \(image\.max_image_uncompressed_bytes\)/);
    // the other layer fit, but the pull failed: it is removed too
    expect(await stored(perImage.root)).toEqual(nothing);
    expect(openFilesUnder(perImage.root)).toEqual([]);

    const roomy = await openStore((c) => (c.image.max_image_uncompressed_bytes = 8 * MiB));
    expect((await roomy.store.pull(img.reference)).layers).toHaveLength(2);
  });

  it('a GNU sparse file whose apparent size passes the per-layer limit is refused, naming the layer', async () => {
    const src = await fsp.mkdtemp(join(tmpdir(), 'berth-sparse-src-'));
    roots.push(src);
    const fh = await fsp.open(join(src, 'huge.bin'), 'w');
    await fh.write(Buffer.from('tail'), 0, 4, 8 * 1024 * 1024);
    await fh.close();
    const tarFile = join(src, 'layer.tar');
    const r = spawnSync('tar', ['--format=posix', '--sparse', '-C', src, '-cf', tarFile, 'huge.bin']);
    expect(r.status).toBe(0);
    const tar = await fsp.readFile(tarFile);
    expect(tar.length).toBeLessThan(64 * 1024);
    const img = hostileImage(reg, 'sparse/huge', 'v1', [tarLayer(tar)]);
    const { store, root } = await openStore((c) => (c.image.max_layer_uncompressed_bytes = 1024 * 1024));
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.message).toContain(`layer ${img.layerDigests[0]}`);
    expect(err.message).toMatch(/'huge\.bin' is a sparse file of 8388612 bytes/);
    expect(await stored(root)).toEqual(nothing);
  });

  it('a layer with long runs of zeros is unpacked sparse', async () => {
    const data = Buffer.alloc(32 * 1024 * 1024);
    data.write('start');
    data.write('end', data.length - 3);
    const img = hostileImage(reg, 'sparse/app', 'v1', [
      gz(makeTarSync([{ path: 'disk.img', content: data }])),
    ]);
    const { store, snap, root } = await openStore();
    const rec = await store.pull(img.reference);
    const file = join(root, 'snapshots/layers', rec.layers[0]!.chainId.slice(7), 'fs/disk.img');
    const st = statSync(file);
    expect(st.size).toBe(data.length);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    expect((await fsp.readFile(file)).equals(data)).toBe(true);
    expect(await snap.hasLayer(rec.layers[0]!.chainId)).toBe(true);
  });
});

describe('bounded manifests and configs', () => {
  it('a manifest over image.max_manifest_bytes is refused with RESOURCE_EXHAUSTED, with or without Content-Length', async () => {
    const img = hostileImage(reg, 'huge/manifest', 'v1', [small('m')], {
      manifestExtra: { annotations: { pad: 'x'.repeat(5 * 1024 * 1024) } },
    });
    const { store, root } = await openStore();
    const e1 = await rejection(store.pull(img.reference));
    expect(e1.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(e1.message).toMatch(/image\.max_manifest_bytes/);
    reg.manifests.set('huge/manifest:v1', {
      body: img.manifest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      chunked: true,
    });
    const e2 = await rejection(store.pull(img.reference));
    expect(e2.code).toBe(Status.RESOURCE_EXHAUSTED);
    const { store: roomy } = await openStore((c) => (c.image.max_manifest_bytes = 8 * 1024 * 1024));
    expect((await roomy.pull(img.reference)).id).toBe(img.configDigest);
    expect(await stored(root)).toEqual(nothing);
  });

  it('a config over image.max_config_bytes is refused before it is downloaded', async () => {
    const filler = 'y'.repeat(1024 * 1024);
    const img = hostileImage(reg, 'huge/config', 'v1', [small('c')], { extra: { junk: filler } });
    const { store, root } = await openStore((c) => (c.image.max_config_bytes = 512 * 1024));
    const before = reg.requests.length;
    const err = await rejection(store.pull(img.reference));
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/image\.max_config_bytes/);
    expect(reg.requests.slice(before).some((r) => r.includes(img.configDigest))).toBe(false);
    expect(await stored(root)).toEqual(nothing);
  });

  it('a config of tens of MB is scanned, not held: history is skipped, 100 000 Env entries are refused', async () => {
    const layer = small('h');
    const history = Array.from({ length: 200_000 }, (_, i) => ({
      created_by: `RUN step ${i} ${'z'.repeat(80)}`,
    }));
    const hist = hostileImage(reg, 'huge/history', 'v1', [layer], { extra: { history } });
    expect(hist.config.length).toBeGreaterThan(20_000_000);
    const { store, root } = await openStore();
    const rec = await store.pull(hist.reference);
    expect(rec.config.config?.Cmd).toEqual(['sh']);
    expect(rec.config.history).toBeUndefined();
    // what the daemon keeps of it (in memory and in the record file) is small
    expect(JSON.stringify(rec).length).toBeLessThan(10_000);
    const recFile = join(root, 'images', `${rec.id.slice(7)}.json`);
    expect(statSync(recFile).size).toBeLessThan(10_000);

    const p = hostPlatform();
    const env = Array.from({ length: 100_000 }, (_, i) => `VARIABLE_${i}=${'v'.repeat(100)}`);
    const envImg = hostileImage(reg, 'huge/env', 'v1', [layer], {
      config: Buffer.from(
        JSON.stringify({
          architecture: p.architecture,
          os: p.os,
          config: { Env: env },
          rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        }),
      ),
    });
    expect(envImg.config.length).toBeGreaterThan(10_000_000);
    const err = await rejection(store.pull(envImg.reference));
    expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(err.message).toContain(envImg.configDigest);
    expect(err.message).toMatch(/"config" part is larger than/);
    expect(store.list()).toHaveLength(1);
    // a record written before (with the whole config) is trimmed to the kept parts when loaded
    const old = JSON.parse(await fsp.readFile(recFile, 'utf8')) as { config: Record<string, unknown> };
    old.config.history = history.slice(0, 1000);
    await fsp.writeFile(recFile, JSON.stringify(old));
    store.close();
    const { store: reopened } = await openStore(undefined, root);
    expect(reopened.get(hist.reference)?.config.history).toBeUndefined();
    expect(reopened.get(hist.reference)?.config.config?.Cmd).toEqual(['sh']);
  });
});

describe('pull errors name every endpoint', () => {
  let real: LabRegistry;
  let closedPort: number;
  beforeAll(async () => {
    real = await startRegistry();
    // a loopback port nobody listens on: the "upstream" is unreachable without leaving the machine
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    closedPort = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
  });
  afterAll(async () => {
    await real?.stop();
  });

  it('mirror says manifest unknown, upstream unreachable: NOT_FOUND with both answers', async () => {
    const upstream = `127.0.0.1:${closedPort}`;
    const { store } = await openStore((c) => (c.registry.mirrors[upstream] = [real.url]));
    const err = await rejection(store.pull(`${upstream}/library/nosuchimage:latest`));
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.message).toBe(
      `${upstream}/library/nosuchimage:latest: mirror ${real.url}: manifest unknown; ${upstream}: unreachable (ECONNREFUSED)`,
    );
  });

  it('nothing reachable: UNAVAILABLE naming both; a mirror that needs credentials: UNAUTHENTICATED', async () => {
    const upstream = `127.0.0.1:${closedPort}`;
    const dead = `http://127.0.0.1:${closedPort}`;
    const { store } = await openStore((c) => (c.registry.mirrors[upstream] = [dead]));
    const err = await rejection(store.pull(`${upstream}/library/x:1`));
    expect(err.code).toBe(Status.UNAVAILABLE);
    expect(err.message).toBe(
      `${upstream}/library/x:1: mirror ${dead}: unreachable (ECONNREFUSED); ${upstream}: unreachable (ECONNREFUSED)`,
    );

    const authReg = await startRegistry({ auth: { kind: 'basic', username: 'u', password: 'p' } });
    try {
      const { store: s2 } = await openStore((c) => (c.registry.mirrors[upstream] = [authReg.url]));
      const e2 = await rejection(s2.pull(`${upstream}/library/x:1`));
      expect(e2.code).toBe(Status.UNAUTHENTICATED);
      expect(e2.message).toContain(
        `mirror ${authReg.url}: registry ${authReg.host} requires a username and password`,
      );
      expect(e2.message).toContain(`${upstream}: unreachable (ECONNREFUSED)`);
    } finally {
      await authReg.stop();
    }
  });
});

describe('through berthd: the CRI answer, berthctl pull, and RSS after a huge config', () => {
  let real: LabRegistry;
  let d: TestDaemon;
  let upstream: string;
  beforeAll(async () => {
    real = await startRegistry();
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    upstream = `127.0.0.1:${(s.address() as AddressInfo).port}`;
    await new Promise<void>((r) => s.close(() => r()));
    d = await startBerthd({ log_level: 'info', registry: { mirrors: { [upstream]: [real.url] } } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await real?.stop();
  });

  it('a failed pull names every endpoint in the CRI status and in berthctl pull', async () => {
    const ref = `${upstream}/library/nosuchimage:latest`;
    const want = `${ref}: mirror ${real.url}: manifest unknown; ${upstream}: unreachable (ECONNREFUSED)`;
    const err = (await call(d.clients.image, 'PullImage', { image: { image: ref } }).catch(
      (e: unknown) => e,
    )) as { code?: number; details?: string };
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.details).toBe(want);
    const r = await berthctl(d, ['pull', ref]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`berthctl pull: NOT_FOUND: ${want}\n`);
  });

  it("berthd's RSS stays put after pulling a 15 MB config and refusing one with 100 000 Env entries", async () => {
    const rss = (): number => procStatusKb(d.proc.pid!) * 1024;
    const layer = small('rss');
    // Warm up the pull path (code, agents, pools) with a download as large as the configs below
    // (a 16 MiB layer), so that the baseline is that of a daemon that has pulled that much: any
    // download leaves its freed socket buffers in glibc's heap, config or layer alike.
    const warmLayer = tarLayer(makeTarSync([{ path: 'warm', content: randomBytes(16 * 1024 * 1024) }]));
    await call(d.clients.image, 'PullImage', {
      image: { image: hostileImage(reg, 'rss/warm', 'v1', [warmLayer]).reference },
    });
    await call(d.clients.image, 'RemoveImage', { image: { image: `${reg.host}/rss/warm:v1` } });
    // under 16 MiB, the old limit, so that the old code's parse-and-keep would show in the figure
    const history = Array.from({ length: 140_000 }, (_, i) => ({
      created_by: `RUN step ${i} ${'z'.repeat(80)}`,
    }));
    const hist = hostileImage(reg, 'rss/history', 'v1', [layer], { extra: { history } });
    expect(hist.config.length).toBeGreaterThan(14_000_000);
    expect(hist.config.length).toBeLessThan(16 * 1024 * 1024);
    const p = hostPlatform();
    const env = Array.from({ length: 100_000 }, (_, i) => `VARIABLE_${i}=${'v'.repeat(100)}`);
    const envImg = hostileImage(reg, 'rss/env', 'v1', [layer], {
      config: Buffer.from(
        JSON.stringify({
          architecture: p.architecture,
          os: p.os,
          config: { Env: env },
          rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        }),
      ),
    });
    const base = rss();
    await call(d.clients.image, 'PullImage', { image: { image: hist.reference } });
    const afterHistory = rss();
    const envErr = (await call(d.clients.image, 'PullImage', { image: { image: envImg.reference } }).catch(
      (e: unknown) => e,
    )) as { code?: number };
    expect(envErr.code).toBe(Status.RESOURCE_EXHAUSTED);
    const afterEnv = rss();
    const mb = (n: number): string => (n / 1024 / 1024).toFixed(1);
    process.stdout.write(
      `berthd RSS: ${mb(base)} MB before, ${mb(afterHistory)} MB after the ${mb(hist.config.length)} MB config, ${mb(afterEnv)} MB after refusing the ${mb(envImg.config.length)} MB one\n`,
    );
    // Right after the pull, the scan's garbage may still be there until the next full collection
    // or the memory relief (+15-22 MB was seen with a 1 MB young generation); the old code's
    // parse-and-keep was +106 MB. What is kept is checked below, once settled.
    expect(afterHistory - base).toBeLessThan(RSS_SLACK * 4);
    // What stays: freed buffers are given back by berthd's memory relief within seconds of the
    // pull (internal/util/memory-relief.ts); what the old code kept (the parsed config, ~100 MB)
    // never would be.
    // The bound is 16 MB: the baseline itself moves by up to ~10 MB from run to run (how much of
    // the warm-up's garbage is still there); the old code kept +106.
    const deadline = Date.now() + 60_000;
    let settled = rss();
    while (settled - base >= RSS_SLACK * 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      settled = rss();
    }
    process.stdout.write(`berthd RSS settled at ${mb(settled)} MB\n`);
    expect(settled - base).toBeLessThan(RSS_SLACK * 2);
  }, 150_000);
});
