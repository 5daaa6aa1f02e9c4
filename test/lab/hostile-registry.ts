// A tiny registry (distribution v2 GET only) on 127.0.0.1 that serves whatever a test puts in it:
// bytes that do not match their digest, a lying or missing Docker-Content-Digest, oversized
// manifests, decompression bombs. Images are built in memory by hostileImage(); a test then swaps
// what is served. Anonymous, plain HTTP (127.0.0.1 is an insecure registry by default).
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as zlib from 'node:zlib';
import { hostPlatform } from './images';

export interface ServedManifest {
  body: Buffer;
  mediaType: string;
  /** Docker-Content-Digest to send: undefined = the body's real digest, null = none */
  digestHeader?: string | null;
  /** send without Content-Length (chunked) */
  chunked?: boolean;
}

export interface HostileRegistry {
  url: string;
  host: string;
  /** `${repo}:${tag or digest}` → what GET /v2/<repo>/manifests/<ref> serves */
  manifests: Map<string, ServedManifest>;
  /** digest → bytes GET /v2/<repo>/blobs/<digest> serves (any repo) */
  blobs: Map<string, Buffer>;
  /** `GET <path>` of every request */
  requests: string[];
  stop(): Promise<void>;
}

export const sha256 = (b: Buffer | string): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function startHostileRegistry(): Promise<HostileRegistry> {
  const manifests = new Map<string, ServedManifest>();
  const blobs = new Map<string, Buffer>();
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(`${req.method} ${url}`);
    const notFound = (code: string, message: string): void => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code, message }] }));
    };
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url);
    if (!m) return notFound('NAME_UNKNOWN', 'repository name not known to registry');
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      const man = manifests.get(`${repo}:${ref}`);
      if (!man) return notFound('MANIFEST_UNKNOWN', 'manifest unknown');
      const headers: Record<string, string> = { 'Content-Type': man.mediaType };
      if (man.digestHeader !== null) headers['Docker-Content-Digest'] = man.digestHeader ?? sha256(man.body);
      if (!man.chunked) headers['Content-Length'] = String(man.body.length);
      res.writeHead(200, headers);
      if (req.method === 'HEAD') return void res.end();
      // in pieces, so a client that stops reading early is visible as an aborted response
      let off = 0;
      const step = (): void => {
        while (off < man.body.length) {
          const piece = man.body.subarray(off, off + 65536);
          off += piece.length;
          if (!res.write(piece)) return void res.once('drain', step);
        }
        res.end();
      };
      step();
      return;
    }
    const blob = blobs.get(ref);
    if (!blob) return notFound('BLOB_UNKNOWN', 'blob unknown to registry');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.length) });
    res.end(blob);
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
    manifests,
    blobs,
    requests,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface HostileLayer {
  /** the blob as served */
  blob: Buffer;
  /** digest of the uncompressed tar */
  diffId: string;
  mediaType?: string;
}

export interface HostileImage {
  reference: string;
  repo: string;
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layerDigests: string[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** A plain (uncompressed) tar layer. */
export function tarLayer(tar: Buffer): HostileLayer {
  return { blob: tar, diffId: sha256(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar' };
}

/**
 * Builds an OCI image (config from `config`, or the default one with `extra` merged in), serves its
 * blobs, and its manifest by tag and by digest.
 */
export function hostileImage(
  reg: HostileRegistry,
  repo: string,
  tag: string,
  layers: HostileLayer[],
  opts: { config?: Buffer; extra?: Record<string, unknown>; manifestExtra?: Record<string, unknown> } = {},
): HostileImage {
  const p = hostPlatform();
  const config =
    opts.config ??
    Buffer.from(
      JSON.stringify({
        architecture: p.architecture,
        os: p.os,
        config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        ...opts.extra,
      }),
    );
  const configDigest = sha256(config);
  reg.blobs.set(configDigest, config);
  const layerDigests = layers.map((l) => {
    const d = sha256(l.blob);
    reg.blobs.set(d, l.blob);
    return d;
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: layers.map((l, i) => ({
        mediaType: l.mediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: layerDigests[i],
        size: l.blob.length,
      })),
      ...opts.manifestExtra,
    }),
  );
  const manifestDigest = sha256(manifest);
  reg.manifests.set(`${repo}:${tag}`, { body: manifest, mediaType: OCI_MANIFEST });
  reg.manifests.set(`${repo}:${manifestDigest}`, { body: manifest, mediaType: OCI_MANIFEST });
  return {
    reference: `${reg.host}/${repo}:${tag}`,
    repo,
    manifest,
    manifestDigest,
    config,
    configDigest,
    layerDigests,
  };
}

/** Serves an OCI index over `images` (same repo) by tag; returns its digest. */
export function hostileIndex(
  reg: HostileRegistry,
  repo: string,
  tag: string,
  images: HostileImage[],
): string {
  const p = hostPlatform();
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: images.map((i) => ({
        mediaType: OCI_MANIFEST,
        digest: i.manifestDigest,
        size: i.manifest.length,
        platform: { os: p.os, architecture: p.architecture },
      })),
    }),
  );
  reg.manifests.set(`${repo}:${tag}`, { body, mediaType: OCI_INDEX });
  return sha256(body);
}

/** A 512-byte ustar header for a regular file (size < 8 GiB). */
function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(
    `${Math.floor(Date.UTC(2024, 0, 1) / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/**
 * A gzip bomb: a valid gzipped tar of one file of `mib` MiB of zeros (rounded up to 16 MiB), built
 * as concatenated gzip members (16 compressed MiB of zeros, repeated), so it costs almost nothing
 * to make. The ratio is that of deflate on zeros, about 1030:1.
 */
export function gzipBomb(mib: number): HostileLayer {
  const MiB = 1024 * 1024;
  const zeros = Buffer.alloc(16 * MiB);
  const n = Math.ceil(mib / 16);
  const head = ustarHeader('bomb', n * 16 * MiB);
  const hash = createHash('sha256').update(head);
  const parts = [zlib.gzipSync(head, { level: 9 })];
  const member = zlib.gzipSync(zeros, { level: 9 });
  for (let i = 0; i < n; i++) {
    parts.push(member);
    hash.update(zeros);
  }
  const tail = Buffer.alloc(1024); // end-of-archive blocks
  parts.push(zlib.gzipSync(tail, { level: 9 }));
  hash.update(tail);
  return { blob: Buffer.concat(parts), diffId: `sha256:${hash.digest('hex')}` };
}
