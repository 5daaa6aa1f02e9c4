// Pure manifest logic: media types, parsing of manifests and indexes, platform selection, chain IDs.
import { createHash } from 'node:crypto';
import { BerthError, Status, failedPrecondition, invalidArgument, short } from '../errors';
import { validateDigest } from './reference';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNdTar: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNdGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNdZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
} as const;

/** What we send in Accept when fetching a manifest. */
export const MANIFEST_ACCEPT = [MT.ociIndex, MT.dockerList, MT.ociManifest, MT.dockerManifest].join(', ');

export type Compression = 'none' | 'gzip' | 'zstd';

/** The compression a layer media type declares; throws for a media type that is not a layer. */
export function layerCompression(mediaType: string): Compression {
  switch (mediaType) {
    case MT.ociLayer:
    case MT.ociLayerNdTar:
    case MT.dockerLayer:
      return 'none';
    case MT.ociLayerGzip:
    case MT.ociLayerNdGzip:
    case MT.dockerLayerGzip:
    case MT.dockerForeignLayerGzip:
      return 'gzip';
    case MT.ociLayerZstd:
    case MT.ociLayerNdZstd:
    case MT.dockerLayerZstd:
      return 'zstd';
    default:
      throw failedPrecondition(`unsupported layer media type ${short(mediaType)}`);
  }
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isRecord(v)) throw failedPrecondition(`${where}: not an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string') throw failedPrecondition(`${where}: missing mediaType`);
  if (typeof digest !== 'string') throw failedPrecondition(`${where}: missing digest`);
  try {
    validateDigest(digest);
  } catch (err) {
    throw failedPrecondition(`${where}: ${(err as Error).message}`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw failedPrecondition(`${where}: invalid size`);
  const d: Descriptor = { mediaType, digest, size };
  if (
    isRecord(v.platform) &&
    typeof v.platform.os === 'string' &&
    typeof v.platform.architecture === 'string'
  ) {
    d.platform = {
      os: v.platform.os,
      architecture: v.platform.architecture,
      ...(typeof v.platform.variant === 'string' ? { variant: v.platform.variant } : {}),
    };
  }
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string');
  return d;
}

/**
 * Parses a manifest or index. `headerType` is the Content-Type the registry sent; the document's own
 * mediaType wins when present. Schema 1 is refused with a clear error.
 */
export function parseManifest(bytes: Buffer, headerType: string | undefined): ImageManifest | ImageIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw failedPrecondition('manifest is not valid JSON');
  }
  if (!isRecord(doc)) throw failedPrecondition('manifest is not a JSON object');
  const ht = headerType?.split(';')[0]?.trim();
  let mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : ht;
  if (doc.schemaVersion === 1 || mediaType === MT.dockerSchema1 || mediaType === MT.dockerSchema1Signed)
    throw failedPrecondition(
      'Docker schema 1 manifests are not supported (deprecated); push the image with schema 2 or OCI',
    );
  // OCI documents may omit mediaType: infer from shape.
  if (!mediaType || mediaType === 'application/json' || mediaType === 'application/octet-stream')
    mediaType = Array.isArray(doc.manifests) ? MT.ociIndex : MT.ociManifest;
  if (mediaType === MT.ociIndex || mediaType === MT.dockerList) {
    if (!Array.isArray(doc.manifests)) throw failedPrecondition('index has no manifests list');
    return {
      kind: 'index',
      mediaType,
      manifests: doc.manifests.map((m, i) => parseDescriptor(m, `index manifests[${i}]`)),
    };
  }
  if (mediaType === MT.ociManifest || mediaType === MT.dockerManifest) {
    if (!Array.isArray(doc.layers)) throw failedPrecondition('manifest has no layers list');
    return {
      kind: 'manifest',
      mediaType,
      config: parseDescriptor(doc.config, 'manifest config'),
      layers: doc.layers.map((l, i) => parseDescriptor(l, `manifest layers[${i}]`)),
    };
  }
  throw failedPrecondition(`unsupported manifest media type ${short(mediaType)}`);
}

/** Parses `os/arch[/variant]`, filling the default variant of arm (v7) and arm64 (v8). */
export function parsePlatform(spec: string): Platform {
  const [os, arch, variant] = spec.split('/');
  if (!os || !arch) throw invalidArgument(`invalid platform ${short(spec)}: want os/arch[/variant]`);
  return normalizePlatform({ os, architecture: arch, ...(variant ? { variant } : {}) });
}

/** Normalises aliases (aarch64 → arm64, x86_64 → amd64) and default variants. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'armhf') {
    architecture = 'arm';
    variant = variant ?? 'v7';
  }
  if (architecture === 'armel') {
    architecture = 'arm';
    variant = variant ?? 'v6';
  }
  if (architecture === 'arm64' && (!variant || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && !variant) variant = 'v7';
  if (architecture === 'arm' && /^[5-8]$/.test(variant ?? '')) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Variants a platform can run, best first: arm/v7 also runs v6 and v5 images; arm64/v8 runs only v8
 * (and entries without a variant, which normalise to v8).
 */
function compatibleVariants(want: Platform): (string | undefined)[] {
  if (want.architecture === 'arm' && want.variant) {
    const n = Number(want.variant.slice(1));
    const out: string[] = [];
    for (let v = n; v >= 5; v--) out.push(`v${v}`);
    return out;
  }
  return [want.variant];
}

/**
 * Picks the manifest of an index for `want`. Exact variant first, then older compatible variants.
 * Entries that are attestations (`unknown/unknown`) are ignored. No match → NOT_FOUND listing what
 * the index offers.
 */
export function selectPlatform(index: ImageIndex, want: Platform, ref: string): Descriptor {
  const w = normalizePlatform(want);
  const candidates = index.manifests.filter(
    (m) => m.mediaType !== MT.ociIndex && m.mediaType !== MT.dockerList,
  );
  for (const variant of compatibleVariants(w)) {
    const hit = candidates.find((m) => {
      if (!m.platform) return false;
      const p = normalizePlatform(m.platform);
      return p.os === w.os && p.architecture === w.architecture && p.variant === variant;
    });
    if (hit) return hit;
  }
  const offered = candidates
    .filter((m) => m.platform && m.platform.os !== 'unknown')
    .map((m) => formatPlatform(normalizePlatform(m.platform as Platform)));
  throw new BerthError(
    Status.NOT_FOUND,
    `image ${short(ref)} has no manifest for platform ${formatPlatform(w)}; available: ${offered.length ? offered.join(', ') : 'none'}`,
  );
}

/** OCI chain IDs: chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n]). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Checks the config's diff_ids against the manifest's layer count; FAILED_PRECONDITION when wrong. */
export function checkDiffIds(diffIds: unknown, layers: number): string[] {
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string'))
    throw failedPrecondition('image config has no rootfs.diff_ids list');
  if (diffIds.length !== layers)
    throw failedPrecondition(
      `image config lists ${diffIds.length} diff_ids but the manifest has ${layers} layers`,
    );
  for (const d of diffIds) {
    try {
      validateDigest(d, 'diff_id');
    } catch (err) {
      throw failedPrecondition((err as Error).message);
    }
  }
  return diffIds;
}
