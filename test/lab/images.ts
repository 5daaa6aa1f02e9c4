// Test images built from Debian's busybox-static and pushed to a lab registry over the v2 API.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getManifest, mountBlob, putManifest, sha256Digest, uploadBlob } from './client';
import type { LabRegistry } from './registry';
import { LAB_MTIME, gzipBuffer, makeTarSync, type TarEntry } from './tar';

const BUSYBOX = '/usr/bin/busybox';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

let appletCache: string[] | undefined;
/** Applet names of the installed busybox-static (one spawn per process). */
export function busyboxApplets(): string[] {
  if (!appletCache) {
    const r = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`busybox --list failed: ${r.stderr}`);
    appletCache = r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
  }
  return appletCache;
}

let busyboxBinary: Buffer | undefined;
function busyboxBytes(): Buffer {
  busyboxBinary ??= readFileSync(BUSYBOX);
  return busyboxBinary;
}

export const PASSWD_BASE =
  'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const GROUP_BASE = 'root:x:0:\nnobody:x:65534:\n';
// bob's primary gid 1001 deliberately has no /etc/group entry: a gid need not name a group.
export const PASSWD_USERS =
  'alice:x:1000:1000:alice:/home/alice:/bin/sh\nbob:x:1001:1001:bob:/home/bob:/bin/sh\n';
export const GROUP_USERS = 'staff:x:50:alice\nalice:x:1000:\n';

/**
 * A minimal busybox rootfs. Paths are relative ('bin/busybox'), dirs end in '/', applets are
 * relative symlinks to 'busybox'. With `users`: alice (1000:1000, also in staff 50) and bob (1001:1001).
 */
export function busyboxEntries(opts: { users?: boolean } = {}): TarEntry[] {
  const entries: TarEntry[] = [
    { path: 'bin/', type: 'dir' },
    { path: 'bin/busybox', content: busyboxBytes(), mode: 0o755 },
  ];
  for (const a of busyboxApplets()) entries.push({ path: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  entries.push(
    { path: 'dev/', type: 'dir' },
    { path: 'etc/', type: 'dir' },
    { path: 'etc/passwd', content: PASSWD_BASE + (opts.users ? PASSWD_USERS : '') },
    { path: 'etc/group', content: GROUP_BASE + (opts.users ? GROUP_USERS : '') },
    { path: 'proc/', type: 'dir' },
    { path: 'root/', type: 'dir', mode: 0o700 },
    { path: 'sys/', type: 'dir' },
    { path: 'tmp/', type: 'dir', mode: 0o1777 },
  );
  if (opts.users) {
    entries.push(
      { path: 'home/', type: 'dir' },
      { path: 'home/alice/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
      { path: 'home/bob/', type: 'dir', mode: 0o750, uid: 1001, gid: 1001 },
    );
  }
  return entries;
}

const layerCache = new Map<string, Buffer>();
/** The busybox rootfs as an uncompressed tar; built once per process per variant. */
export function busyboxLayer(opts: { users?: boolean } = {}): Buffer {
  const key = opts.users ? 'users' : 'plain';
  let b = layerCache.get(key);
  if (!b) {
    b = makeTarSync(busyboxEntries(opts));
    layerCache.set(key, b);
  }
  return b;
}

/**
 * /pause for the pause image. A process that is PID 1 of its namespace gets no default signal
 * actions, so plain `sleep` as PID 1 would ignore SIGTERM; the shell installs handlers, kills its
 * sleeper (which would otherwise outlive it when the pod shares the host PID namespace) and exits 0.
 * `wait` is interrupted by a trapped signal, so the exit is immediate.
 */
export const PAUSE_SCRIPT = `#!/bin/sh
trap 'kill $pid 2>/dev/null; exit 0' TERM INT
while :; do
  sleep 86400 &
  pid=$!
  wait $pid
done
`;

export function pauseLayer(): Buffer {
  const key = 'pause';
  let b = layerCache.get(key);
  if (!b) {
    b = makeTarSync([{ path: 'pause', content: PAUSE_SCRIPT, mode: 0o755 }]);
    layerCache.set(key, b);
  }
  return b;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PushedLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

export interface PushedImage {
  repo: string;
  tag?: string;
  /** host/repo:tag, or host/repo@digest when pushed without a tag */
  reference: string;
  manifestDigest: string;
  configDigest: string;
  manifestMediaType: string;
  layers: PushedLayer[];
  platform: Platform;
  /** the registry host it was pushed to */
  host: string;
  manifestSize: number;
  /** raw manifest and config JSON as pushed */
  manifest: string;
  config: string;
}

export interface ImageConfigSpec {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  StopSignal?: string;
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  Volumes?: Record<string, Record<string, never>>;
}

export interface ImageSpec {
  /** uncompressed tars, bottom layer first */
  layers: Buffer[];
  compression?: 'gzip' | 'none' | 'zstd';
  format?: 'docker' | 'oci';
  config?: ImageConfigSpec;
  platform?: Platform;
}

/** Go's GOARCH for this machine, as image platforms name it. */
export function hostPlatform(): Platform {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };
  return { os: 'linux', architecture: map[process.arch] ?? process.arch };
}

function zstdCompress(b: Buffer): Buffer {
  const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: b, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function layerMediaType(format: 'docker' | 'oci', compression: 'gzip' | 'none' | 'zstd'): string {
  if (format === 'docker') {
    return { gzip: MEDIA.dockerLayerGzip, none: MEDIA.dockerLayer, zstd: MEDIA.dockerLayerZstd }[compression];
  }
  return { gzip: MEDIA.ociLayerGzip, none: MEDIA.ociLayer, zstd: MEDIA.ociLayerZstd }[compression];
}

// Compressed layers cached by (diffId, compression) so repeated pushes of busybox cost no work.
const compressedCache = new Map<string, Buffer>();
function compress(tar: Buffer, diffId: string, compression: 'gzip' | 'none' | 'zstd'): Buffer {
  if (compression === 'none') return tar;
  const key = `${diffId}/${compression}`;
  let b = compressedCache.get(key);
  if (!b) {
    b = compression === 'gzip' ? gzipBuffer(tar) : zstdCompress(tar);
    compressedCache.set(key, b);
  }
  return b;
}

const diffIdCache = new WeakMap<Buffer, string>();
function diffIdOf(tar: Buffer): string {
  let d = diffIdCache.get(tar);
  if (!d) {
    d = sha256Digest(tar);
    diffIdCache.set(tar, d);
  }
  return d;
}

/** Builds config + manifest for `spec`, uploads blobs and PUTs the manifest by tag (or digest). */
export async function pushImage(
  reg: LabRegistry,
  repo: string,
  tag: string | undefined,
  spec: ImageSpec,
): Promise<PushedImage> {
  const format = spec.format ?? 'docker';
  const compression = spec.compression ?? 'gzip';
  const platform = spec.platform ?? hostPlatform();
  const layerMT = layerMediaType(format, compression);

  const layers: PushedLayer[] = [];
  for (const tar of spec.layers) {
    const diffId = diffIdOf(tar);
    const blob = compress(tar, diffId, compression);
    const digest = await uploadBlob(reg, repo, blob);
    layers.push({ digest, diffId, size: blob.length, mediaType: layerMT });
  }

  const created = LAB_MTIME.toISOString();
  const configObj = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...spec.config,
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created, created_by: 'berth test lab' })),
  };
  const config = Buffer.from(JSON.stringify(configObj));
  const configDigest = await uploadBlob(reg, repo, config);

  const manifestMediaType = format === 'docker' ? MEDIA.dockerManifest : MEDIA.ociManifest;
  const manifestObj = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: {
      mediaType: format === 'docker' ? MEDIA.dockerConfig : MEDIA.ociConfig,
      size: config.length,
      digest: configDigest,
    },
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
  };
  const manifest = Buffer.from(JSON.stringify(manifestObj, null, 2));
  const manifestDigest = sha256Digest(manifest);
  await putManifest(reg, repo, tag ?? manifestDigest, manifest, manifestMediaType);

  return {
    repo,
    tag,
    reference: tag !== undefined ? `${reg.host}/${repo}:${tag}` : `${reg.host}/${repo}@${manifestDigest}`,
    manifestDigest,
    configDigest,
    manifestMediaType,
    layers,
    platform,
    host: reg.host,
    manifestSize: manifest.length,
    manifest: manifest.toString('utf8'),
    config: config.toString('utf8'),
  };
}

/**
 * Pushes an index (OCI) or manifest list (docker) over `images`. Images pushed to another repo of
 * this registry are brought over first: blobs by cross-repo mount, the manifest by digest.
 */
export async function pushIndex(
  reg: LabRegistry,
  repo: string,
  tag: string,
  images: PushedImage[],
  format: 'oci' | 'docker' = 'oci',
): Promise<{ digest: string; reference: string; mediaType: string; body: string }> {
  for (const img of images) {
    if (img.repo === repo) continue;
    const blobs = [img.configDigest, ...img.layers.map((l) => l.digest)];
    for (const d of blobs) {
      if (!(await mountBlob(reg, repo, img.repo, d))) {
        throw new Error(`could not mount ${d} from ${img.repo} into ${repo}`);
      }
    }
    const { body, mediaType } = await getManifest(reg, img.repo, img.manifestDigest);
    await putManifest(reg, repo, img.manifestDigest, body, mediaType);
  }
  const mediaType = format === 'oci' ? MEDIA.ociIndex : MEDIA.dockerList;
  const indexObj = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((img) => ({
      mediaType: img.manifestMediaType,
      size: img.manifestSize,
      digest: img.manifestDigest,
      platform: {
        architecture: img.platform.architecture,
        os: img.platform.os,
        ...(img.platform.variant ? { variant: img.platform.variant } : {}),
      },
    })),
  };
  const body = Buffer.from(JSON.stringify(indexObj, null, 2));
  const digest = await putManifest(reg, repo, tag, body, mediaType);
  return { digest, reference: `${reg.host}/${repo}:${tag}`, mediaType, body: body.toString('utf8') };
}

/** Path of a blob's data file in the registry's filesystem storage. */
export function blobDataPath(reg: LabRegistry, digest: string): string {
  const [alg, hex] = digest.split(':');
  if (!alg || !hex || !/^[a-f0-9]{64}$/.test(hex)) throw new Error(`bad digest ${digest}`);
  return join(reg.storageDir, 'docker/registry/v2/blobs', alg, hex.slice(0, 2), hex, 'data');
}

/** Overwrites the blob's stored bytes with different bytes of the same length (each byte inverted). */
export async function corruptBlob(reg: LabRegistry, digest: string): Promise<void> {
  const p = blobDataPath(reg, digest);
  const data = await readFile(p);
  if (data.length === 0) throw new Error(`blob ${digest} is empty; nothing to corrupt`);
  for (let i = 0; i < data.length; i++) data[i] ^= 0xff;
  await writeFile(p, data);
}

/** busybox:latest (one gzip layer, docker format, Cmd ['sh']). */
export function pushBusybox(
  reg: LabRegistry,
  repo = 'library/busybox',
  tag = 'latest',
): Promise<PushedImage> {
  return pushImage(reg, repo, tag, { layers: [busyboxLayer()], config: { Cmd: ['sh'] } });
}

/**
 * The pause image: the busybox layer plus a layer with /pause (see PAUSE_SCRIPT), Entrypoint ['/pause'].
 * It runs until SIGTERM or SIGINT and then exits 0 at once.
 */
export function pushPause(reg: LabRegistry, repo = 'pause', tag = '3.10'): Promise<PushedImage> {
  return pushImage(reg, repo, tag, {
    layers: [busyboxLayer(), pauseLayer()],
    config: { Entrypoint: ['/pause'], StopSignal: 'SIGTERM' },
  });
}

/** busybox with alice/bob/staff in /etc/passwd and /etc/group, and config User set to `user`. */
export function pushUserImage(
  reg: LabRegistry,
  repo: string,
  tag: string,
  user: string,
): Promise<PushedImage> {
  return pushImage(reg, repo, tag, {
    layers: [busyboxLayer({ users: true })],
    config: { User: user, Cmd: ['id'] },
  });
}
