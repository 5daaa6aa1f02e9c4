// The image store: pulls images (registry → content store → snapshotter), keeps one record per image
// under <root>/images/<config hex>.json, answers lookups, removes images and frees what nobody uses.
//
// Layer blobs are kept only with image.discard_unpacked_layers = false: by default a layer streams
// from the registry through its digest check into its staged snapshot and is not stored compressed
// too; manifests and configs always are. Files of an image (readFile: /etc/passwd for a container's
// user) are read from its unpacked layers (snapshot/merged-read.ts), never from blobs.
//
// Crash safety: blobs enter the content store only verified (content.ts); layers are applied by the
// snapshotter, which drops half-applied ones at its init; the image record is written (atomically)
// only after every layer is in place. So a kill -9 mid-pull leaves no record, and init() removes the
// blobs and layers no record references.
//
// fsUsage() (ImageFsInfo) answers from memory: blob sizes kept by the content store, layer sizes
// and the container snapshots' usage kept by the snapshotter (its background walker), the record
// files' sizes stat-ed when written, and the mountpoint found once at init.
//
// Error codes: bad reference INVALID_ARGUMENT; registry 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
// 404 or no manifest for our platform NOT_FOUND; network and 5xx UNAVAILABLE; a blob that does not
// match its digest (or a diff_id mismatch) DATA_LOSS; unsupported formats (schema 1, zstd, bad
// manifests) FAILED_PRECONDITION; stalled pull DEADLINE_EXCEEDED; cancelled pull CANCELLED; a
// manifest, config or layer past its configured bound (unpack-limits.ts, config-scan.ts)
// RESOURCE_EXHAUSTED. With mirrors, a failed manifest fetch names every endpoint (endpoint-errors.ts).
// A failed pull removes the blobs and layers it stored (discard) before its error returns.
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Config } from '../config/config';
import { BerthError, Status, errMessage, failedPrecondition, isBerthError, short } from '../errors';
import type { Logger } from '../log';
import { readMergedFile } from '../snapshot/merged-read';
import type { Snapshotter, StagedLayer } from '../snapshot/types';
import { atomicWriteJson, cleanTempFiles, quarantine } from '../util/fs';
import { KeyedMutex } from '../util/keyed-mutex';
import { credentialKey, resolveCredentials } from './auth';
import { DEFAULT_KEPT_BUDGET, KEPT_KEYS, readImageConfigFile } from './config-scan';
import { ContentStore, digestMismatch, streamVerified } from './content';
import { ZSTD_UNSUPPORTED, zstdSupported } from './decompress';
import {
  type Descriptor,
  type ImageManifest,
  checkDiffIds,
  chainIds as computeChainIds,
  formatPlatform,
  layerCompression,
  parseManifest,
  parsePlatform,
  selectPlatform,
} from './manifest';
import { PullProgress, type PullSnapshot } from './progress';
import { type UnpackBudget, unpackBudget } from './unpack-limits';
import { UnpackPool, type UnpackPoolOptions } from './unpack-pool';
import {
  type ImageReference,
  digestReference,
  formatReference,
  parseReference,
  tagReference,
} from './reference';
import { RegistryClient, type RegistrySession, abortReason } from './registry';
import type { ImageConfig, ImageFilter, ImageRecord, ImageStore, LayerRecord, PullOptions } from './types';
import { metrics } from '../metrics/metrics';

const ID_RE = /^(?:sha256:)?([a-f0-9]{12,64})$/;
const READ_CACHE_MAX = 256;

export interface LocalImageStoreOptions {
  /** Berth's root, e.g. /var/lib/berth: content/ and images/ live below it */
  root: string;
  config: Config;
  snapshotter: Snapshotter;
  log: Logger;
  /** the unpack pool's worker script and small-layer bound (defaults: see UnpackPoolOptions) */
  unpack?: Pick<UnpackPoolOptions, 'script' | 'minWorkerBytes'>;
}

interface SharedPull {
  key: string;
  promise: Promise<ImageRecord>;
  controller: AbortController;
  waiters: number;
}

/** Runs at most `n` tasks at a time, in the order they were queued. */
class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}

export class LocalImageStore implements ImageStore {
  readonly content: ContentStore;
  readonly registry: RegistryClient;
  private readonly imagesDir: string;
  private readonly records = new Map<string, ImageRecord>();
  private readonly byTag = new Map<string, string>();
  private readonly byDigest = new Map<string, string>();
  private readonly pulls = new Map<string, SharedPull>();
  /** the progress of each pull running now (Status verbose → berthctl pull's progress bar) */
  private readonly running = new Set<PullProgress>();
  /** chain IDs and blobs that running pulls use: GC leaves them alone */
  private readonly busyChains = new Map<string, number>();
  private readonly busyBlobs = new Map<string, number>();
  private readonly lock = new KeyedMutex();
  private readonly readCache = new Map<string, Buffer | undefined>();
  private readonly log: Logger;
  private readonly unpacker: UnpackPool;
  private pinnedRef: string | undefined;
  /** bytes (st_blocks * 512) of each image record file, stat-ed when written or loaded */
  private readonly recordBytes = new Map<string, number>();
  private imagesDirBytes = 0;
  private mountpoint = '/';

  constructor(private readonly opts: LocalImageStoreOptions) {
    this.content = new ContentStore(opts.root);
    this.imagesDir = path.join(opts.root, 'images');
    this.log = opts.log.child({ component: 'image' });
    this.registry = new RegistryClient({
      config: opts.config,
      log: this.log,
      bodyChunk: () => this.unpacker.takeChunk(),
    });
    this.unpacker = new UnpackPool({
      workers: opts.config.image.unpack_workers,
      log: this.log,
      ...opts.unpack,
    });
    try {
      this.pinnedRef = formatReference(parseReference(opts.config.pause_image));
    } catch {
      this.pinnedRef = undefined;
    }
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.imagesDir, { recursive: true, mode: 0o700 });
    const temps = await cleanTempFiles(this.imagesDir);
    const staleBlobs = await this.content.init();
    if (temps + staleBlobs > 0)
      this.log.info('removed temp files of interrupted writes', { count: temps + staleBlobs });
    for (const name of await fsp.readdir(this.imagesDir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const file = path.join(this.imagesDir, name);
      try {
        const rec = checkRecord(JSON.parse(await fsp.readFile(file, 'utf8')) as unknown, name.slice(0, 64));
        rec.config = keptConfig(rec.config); // records written before config-scan.ts kept everything
        this.index(rec);
      } catch (err) {
        const moved = await quarantine(file).catch(() => file);
        this.log.warn('image record is corrupt; moved aside', {
          file,
          movedTo: moved,
          error: errMessage(err),
        });
      }
    }
    await this.collectGarbage('startup');
    for (const id of this.records.keys()) await this.statRecord(id);
    if (this.records.size === 0)
      this.imagesDirBytes = ((await fsp.stat(this.imagesDir).catch(() => undefined))?.blocks ?? 0) * 512;
    this.mountpoint = await mountpointOf(this.opts.root);
    this.log.info('image store ready', { images: this.records.size });
  }

  /** Stops keep-alive connections (for tests and shutdown). */
  close(): void {
    this.registry.close();
    void this.unpacker.close();
  }

  // ---- lookups ----

  get(refOrId: string): ImageRecord | undefined {
    if (typeof refOrId !== 'string' || refOrId.length === 0) return undefined;
    const m = ID_RE.exec(refOrId);
    if (m) {
      const hex = m[1] as string;
      const full = this.records.get(`sha256:${hex}`);
      if (full) return full;
      const hits = [...this.records.keys()].filter((id) => id.startsWith(`sha256:${hex}`));
      if (hits.length === 1) return this.records.get(hits[0] as string);
      if (refOrId.startsWith('sha256:')) return undefined;
    }
    let ref: ImageReference;
    try {
      ref = parseReference(refOrId);
    } catch {
      return undefined;
    }
    const id = ref.digest
      ? this.byDigest.get(digestReference(ref, ref.digest))
      : this.byTag.get(tagReference(ref) as string);
    return id ? this.records.get(id) : undefined;
  }

  list(filter?: ImageFilter): ImageRecord[] {
    if (filter?.image) {
      const r = this.get(filter.image);
      return r ? [r] : [];
    }
    return [...this.records.values()].sort((a, b) => a.pulledAt - b.pulledAt);
  }

  chainIds(image: ImageRecord): string[] {
    return image.layers.map((l) => l.chainId);
  }

  isPinned(image: ImageRecord): boolean {
    return (
      this.pinnedRef !== undefined &&
      (image.repoTags.includes(this.pinnedRef) || image.repoDigests.includes(this.pinnedRef))
    );
  }

  // ---- pull ----

  /** Where each running pull is: layers and bytes downloaded of those planned. */
  activePulls(): PullSnapshot[] {
    return [...this.running].map((p) => p.snapshot());
  }

  pull(reference: string, opts: PullOptions = {}): Promise<ImageRecord> {
    let ref: ImageReference;
    let creds: ReturnType<typeof resolveCredentials>;
    try {
      ref = parseReference(reference);
      creds = resolveCredentials(opts.credentials);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const name = formatReference(ref);
    const key = `${name}|${credentialKey(creds)}`;
    let op = this.pulls.get(key);
    if (!op) {
      const controller = new AbortController();
      const promise = this.doPull(ref, opts, controller.signal).finally(() => {
        if (this.pulls.get(key) === op) this.pulls.delete(key);
      });
      op = { key, promise, controller, waiters: 0 };
      this.pulls.set(key, op);
      promise.catch(() => undefined); // callers get the error; no unhandled rejection if all left
    } else {
      this.log.debug('joining a pull in progress', { ref: name });
    }
    const shared = op;
    shared.waiters++;
    const signal = opts.signal;
    if (!signal) return shared.promise;
    if (signal.aborted) {
      this.leave(shared);
      return Promise.reject(abortReason(signal));
    }
    return new Promise<ImageRecord>((resolve, reject) => {
      const onAbort = (): void => {
        this.leave(shared);
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      shared.promise.then(
        (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** A caller gave up; the shared pull is cancelled when nobody waits for it any more. */
  private leave(op: SharedPull): void {
    op.waiters--;
    if (op.waiters <= 0)
      op.controller.abort(new BerthError(Status.CANCELLED, 'pull cancelled by the caller'));
  }

  private async doPull(ref: ImageReference, opts: PullOptions, signal: AbortSignal): Promise<ImageRecord> {
    const name = formatReference(ref);
    const cfg = this.opts.config.image;
    const inner = new AbortController();
    const onOuter = (): void => inner.abort(signal.reason);
    signal.addEventListener('abort', onOuter, { once: true });
    const progress = new PullProgress({
      ref: name,
      timeoutMs: cfg.pull_progress_timeout_seconds * 1000,
      minBytesPerSecond: cfg.pull_progress_min_bytes_per_second,
      log: this.log,
      onStall: (err) => {
        this.log.warn('pull stalled; cancelling', { ref: name, error: err.message });
        inner.abort(err);
      },
    });
    progress.start();
    this.running.add(progress);
    const held: { chains: string[]; blobs: string[] } = { chains: [], blobs: [] };
    const started = Date.now();
    let failed = false;
    try {
      const manifestCounter = { t: progress.begin('manifest') };
      const session = this.registry.session(ref, opts.credentials, inner.signal, (n) =>
        manifestCounter.t.add(n),
      );
      const rec = await this.pullWith(ref, session, inner.signal, progress, held, manifestCounter);
      this.log.info('image pulled', {
        ref: name,
        id: rec.id,
        bytes: progress.bytes,
        seconds: Number(((Date.now() - started) / 1000).toFixed(2)),
      });
      metrics.pullDone(progress.bytes, (Date.now() - started) / 1000);
      return rec;
    } catch (err) {
      const out = inner.signal.aborted ? abortReason(inner.signal) : namingRef(err, name);
      metrics.pullFailed(out, progress.bytes);
      inner.abort(err); // stops downloads still running for this pull
      failed = true;
      throw out;
    } finally {
      progress.stop();
      this.running.delete(progress);
      signal.removeEventListener('abort', onOuter);
      for (const c of held.chains) release(this.busyChains, c);
      for (const b of held.blobs) release(this.busyBlobs, b);
      // Nothing of a failed pull stays: the blobs it stored and the layers it unpacked go now
      // (those another image or a running pull uses stay), before the caller hears of the failure.
      if (failed) await this.discard(held, name);
    }
  }

  /** Removes the blobs and layers a failed pull held that no record references and nobody else uses. */
  private async discard(held: { chains: string[]; blobs: string[] }, name: string): Promise<void> {
    await this.lock.run('records', async () => {
      const keepChains = new Set<string>(this.busyChains.keys());
      const keepBlobs = new Set<string>(this.busyBlobs.keys());
      for (const r of this.records.values()) {
        for (const b of referencedBlobs(r)) keepBlobs.add(b);
        for (const l of r.layers) keepChains.add(l.chainId);
      }
      const snap = this.opts.snapshotter;
      let layers = 0;
      let blobs = 0;
      try {
        const inUse = await snap.layersInUse();
        // top-down: a layer's children (in this pull) go before it
        for (const c of [...new Set(held.chains)].reverse()) {
          if (keepChains.has(c) || inUse.has(c) || this.busyChains.has(c)) continue;
          if (!(await snap.hasLayer(c))) continue;
          await snap.removeLayer(c);
          layers++;
        }
        for (const b of new Set(held.blobs)) {
          if (keepBlobs.has(b) || this.busyBlobs.has(b) || !(await this.content.has(b))) continue;
          await this.content.delete(b);
          blobs++;
        }
      } catch (err) {
        this.log.warn('cannot remove what a failed pull stored; the next start will', {
          ref: name,
          error: errMessage(err),
        });
      }
      if (layers + blobs > 0)
        this.log.info('removed what a failed pull stored', { ref: name, layers, blobs });
    });
  }

  private async pullWith(
    ref: ImageReference,
    session: RegistrySession,
    signal: AbortSignal,
    progress: PullProgress,
    held: { chains: string[]; blobs: string[] },
    manifestCounter: { t: ReturnType<PullProgress['begin']> },
  ): Promise<ImageRecord> {
    const name = formatReference(ref);
    const hold = (blob: string): void => {
      acquire(this.busyBlobs, blob);
      held.blobs.push(blob);
    };

    // 1. Manifest (or index → platform manifest). Digests are always computed; checked when asked for.
    // getManifest verifies the bytes (against the digest asked for, or the Docker-Content-Digest the
    // registry sent for a tag); the checks here only guard that contract.
    const top = await session.getManifest(ref.digest ?? (ref.tag as string));
    if (ref.digest && top.digest !== ref.digest) throw digestMismatch(ref.digest, top.digest, 'manifest');
    let parsed = parseManifest(top.bytes, top.mediaType);
    const topDigest = top.digest;
    const topMediaType = parsed.mediaType;
    const manifests: { digest: string; bytes: Buffer }[] = [{ digest: top.digest, bytes: top.bytes }];
    let platformManifestDigest: string | undefined;
    if (parsed.kind === 'index') {
      const want = parsePlatform(this.opts.config.image.platform);
      const desc = selectPlatform(parsed, want, name);
      if (desc.size > this.opts.config.image.max_manifest_bytes)
        throw new BerthError(
          Status.RESOURCE_EXHAUSTED,
          `index entry ${desc.digest} of ${short(name)} declares ${desc.size} bytes, more than image.max_manifest_bytes (${this.opts.config.image.max_manifest_bytes})`,
        );
      const child = await session.getManifest(desc.digest, 'platform manifest');
      if (child.digest !== desc.digest) throw digestMismatch(desc.digest, child.digest, 'platform manifest');
      parsed = parseManifest(child.bytes, desc.mediaType);
      if (parsed.kind !== 'manifest')
        throw failedPrecondition(`index entry ${desc.digest} of ${short(name)} is itself an index`);
      platformManifestDigest = child.digest;
      manifests.push({ digest: child.digest, bytes: child.bytes });
    }
    manifestCounter.t.done();
    const manifest: ImageManifest = parsed;
    for (const m of manifests) hold(m.digest);

    // 2. Config: verified, parsed, its diff_ids matched to the layers.
    const cfgDesc = manifest.config;
    const maxConfig = this.opts.config.image.max_config_bytes;
    if (cfgDesc.size > maxConfig)
      throw new BerthError(
        Status.RESOURCE_EXHAUSTED,
        `image config ${cfgDesc.digest} of ${short(name)} declares ${cfgDesc.size} bytes, more than image.max_config_bytes (${maxConfig})`,
      );
    hold(cfgDesc.digest);
    await this.fetchBlob(session, cfgDesc, progress, 'config');
    // Scanned from disk, keeping only what Berth uses (config-scan.ts): never held whole.
    let config: ImageConfig;
    try {
      config = readImageConfigFile(
        this.content.path(cfgDesc.digest),
        DEFAULT_KEPT_BUDGET,
        `image config ${cfgDesc.digest} of ${short(name)}`,
      );
    } catch (err) {
      if (isBerthError(err, Status.FAILED_PRECONDITION))
        throw failedPrecondition(`image config ${cfgDesc.digest} of ${short(name)}: ${err.message}`);
      throw err;
    }
    const diffIds = checkDiffIds(config.rootfs?.diff_ids, manifest.layers.length);
    const chains = computeChainIds(diffIds);
    for (const c of chains) {
      acquire(this.busyChains, c);
      held.chains.push(c);
    }
    for (const l of manifest.layers) {
      if (layerCompression(l.mediaType) === 'zstd' && !zstdSupported())
        throw failedPrecondition(
          `layer ${l.digest} of ${short(name)} is zstd-compressed; ${ZSTD_UNSUPPORTED}`,
        );
    }

    // 3. Layers: decide per layer what is needed (a present chain ID is neither downloaded nor applied;
    // its blob is fetched only when blobs are kept and none with its diff_id is stored).
    const keepBlobs = !this.opts.config.image.discard_unpacked_layers;
    const layers: LayerRecord[] = [];
    const plan: { desc: Descriptor; needApply: boolean; blob: string; download: boolean }[] = [];
    for (let i = 0; i < manifest.layers.length; i++) {
      const desc = manifest.layers[i] as Descriptor;
      const chainId = chains[i] as string;
      const needApply = !(await this.opts.snapshotter.hasLayer(chainId));
      let blob = desc.digest;
      hold(blob); // before looking, so a failed pull's clean-up cannot remove it under us
      let download = !(await this.content.has(desc.digest));
      if (download && !needApply && !keepBlobs) {
        download = false; // the layer is there and its blob is not kept
      } else if (download && !needApply) {
        const alt = await this.storedBlobForDiff(diffIds[i] as string);
        if (alt) {
          blob = alt;
          hold(blob);
          download = false;
        }
      }
      plan.push({ desc, needApply, blob, download });
      layers.push({
        digest: desc.digest,
        mediaType: desc.mediaType,
        size: desc.size,
        diffId: diffIds[i] as string,
        chainId,
        ...(blob !== desc.digest ? { storedDigest: blob } : {}),
      });
    }

    const toFetch = plan.filter((p) => p.download);
    progress.plan(
      toFetch.length,
      toFetch.reduce((s, p) => s + p.desc.size, 0),
    );
    // Each layer is one task, at most image.max_concurrent_downloads at a time: a layer to download
    // and unpack streams from the registry into the content store and, on the way, through
    // decompression and its diff_id check into a staged snapshot dir; a stored one unpacks from its
    // blob the same way. Staged layers are committed in layer order, each once its parent is.
    const limiter = new Limiter(this.opts.config.image.max_concurrent_downloads);
    const budget = unpackBudget(this.opts.config.image);
    const stop = new AbortController();
    let firstErr: unknown;
    const tasks = plan.map((p, i) => {
      const layer = layers[i] as LayerRecord;
      const task = limiter.run(async (): Promise<StagedLayer | undefined> => {
        if (stop.signal.aborted || signal.aborted) throw firstErr ?? abortReason(signal);
        if (p.download && p.needApply)
          return this.fetchAndStage(session, p.desc, layer, progress, name, budget, stop.signal, keepBlobs);
        if (p.download) {
          await this.fetchBlob(session, p.desc, progress, 'layer');
          return undefined;
        }
        return p.needApply ? this.stageStored(p.blob, layer, name, budget, stop.signal) : undefined;
      });
      // the first failure stops the other layers at once (their streams are destroyed)
      task.catch((err: unknown) => {
        if (stop.signal.aborted) return;
        firstErr = err;
        stop.abort(err);
      });
      return task;
    });
    try {
      for (let i = 0; i < plan.length; i++) {
        const staged = await tasks[i];
        if (signal.aborted) throw abortReason(signal);
        if (staged) await staged.commit(i > 0 ? chains[i - 1] : undefined);
      }
    } catch (err) {
      if (!stop.signal.aborted) {
        firstErr = err;
        stop.abort(err);
      }
      // nothing of this pull may still be writing when its clean-up runs: wait for every task,
      // then drop the dirs of layers that unpacked but were not committed
      const settled = await Promise.allSettled(tasks);
      for (const r of settled) if (r.status === 'fulfilled') await r.value?.discard().catch(() => undefined);
      throw signal.aborted ? abortReason(signal) : firstErr;
    }

    // 4. Everything is in place: store the manifests, then commit the record.
    for (const m of manifests) await this.content.put(m.digest, m.bytes);
    const tag = tagReference(ref);
    const rec: ImageRecord = {
      id: cfgDesc.digest,
      repoTags: tag ? [tag] : [],
      repoDigests: [digestReference(ref, topDigest)],
      size: cfgDesc.size + manifest.layers.reduce((s, l) => s + l.size, 0),
      manifestDigest: topDigest,
      manifestMediaType: topMediaType,
      ...(platformManifestDigest ? { platformManifestDigest } : {}),
      platform: formatPlatform({
        os: config.os ?? 'linux',
        architecture: config.architecture ?? 'unknown',
        ...(config.variant ? { variant: config.variant } : {}),
      }),
      layers,
      config,
      pulledAt: Date.now(),
    };
    return this.commit(rec);
  }

  /** Downloads a blob into the content store unless present, counting progress. */
  private async fetchBlob(
    session: RegistrySession,
    desc: Descriptor,
    progress: PullProgress,
    what: string,
  ): Promise<void> {
    if (await this.content.has(desc.digest)) return;
    const t = progress.begin(`${what} ${desc.digest.slice(7, 19)}`, desc.size);
    try {
      const { body } = await session.getBlob(desc.digest, desc.size);
      await this.content.ingest(desc.digest, body, { size: desc.size, onBytes: t.add, what });
    } finally {
      t.done();
    }
  }

  /**
   * Downloads a layer blob and unpacks it on the way into a staged snapshot dir (not committed),
   * storing the blob in the content store with `keepBlob`. The stage reads the blob's bytes as they
   * are verified; the compressed digest check ends the stream, so the staged layer is whole and
   * verified when both are done.
   */
  private async fetchAndStage(
    session: RegistrySession,
    desc: Descriptor,
    layer: LayerRecord,
    progress: PullProgress,
    name: string,
    budget: UnpackBudget,
    stop: AbortSignal,
    keepBlob: boolean,
  ): Promise<StagedLayer> {
    const t = progress.begin(`layer ${desc.digest.slice(7, 19)}`, desc.size);
    try {
      const { body } = await session.getBlob(desc.digest, desc.size);
      const branch = new PassThrough({ highWaterMark: 1024 * 1024 });
      // A failed download destroys the branch with its error, maybe before the stage reads it:
      // the error reaches the stage when it reads, and the pull through the ingest's promise.
      branch.on('error', () => undefined);
      const unhook = destroyOnStop(body, stop);
      let first: unknown;
      const opts = { size: desc.size, onBytes: t.add, what: 'layer' };
      const ingest = (
        keepBlob
          ? this.content.ingest(desc.digest, body, { ...opts, tee: branch })
          : streamVerified(desc.digest, body, branch, opts)
      ).catch((err: unknown) => {
        first ??= err;
        throw err;
      });
      const staged = this.stageFrom(branch, desc.size, layer, name, budget).catch((err: unknown) => {
        first ??= err;
        body.destroy(); // the blob is of no use without its layer: stop downloading it
        throw err;
      });
      const [ir, sr] = await Promise.allSettled([ingest, staged]);
      unhook();
      if (ir.status === 'fulfilled' && sr.status === 'fulfilled') return sr.value;
      if (sr.status === 'fulfilled') await sr.value.discard();
      if (stop.aborted) throw stop.reason;
      throw first;
    } finally {
      t.done();
    }
  }

  /** Unpacks a layer blob already in the content store into a staged snapshot dir. */
  private async stageStored(
    blob: string,
    layer: LayerRecord,
    name: string,
    budget: UnpackBudget,
    stop: AbortSignal,
  ): Promise<StagedLayer> {
    const compressed = (await this.content.size(blob)) ?? layer.size;
    const src = createReadStream(this.content.path(blob), { highWaterMark: 1024 * 1024 });
    src.on('error', () => undefined); // reaches the stage when it reads
    const unhook = destroyOnStop(src, stop);
    try {
      return await this.stageFrom(src, compressed, layer, name, budget);
    } finally {
      unhook();
    }
  }

  /**
   * Unpacks a compressed layer stream into a staged snapshot dir, within the pull's unpack budget,
   * verifying its diff_id (in a worker thread of the unpack pool): a layer that does not match is
   * never handed back.
   */
  private async stageFrom(
    compressed: Readable,
    compressedBytes: number,
    layer: LayerRecord,
    name: string,
    budget: UnpackBudget,
  ): Promise<StagedLayer> {
    const what = `layer ${layer.digest}`;
    const t0 = Date.now();
    let bytes = 0;
    try {
      const staged = await this.opts.snapshotter.stageLayer(layer.chainId, async (dir) => {
        const r = await this.unpacker.run(compressed, dir, {
          diffId: layer.diffId,
          what,
          label: `${what} of ${short(name)}`,
          compressedBytes,
          budget,
        });
        bytes = r.bytes;
        return r;
      });
      metrics.unpacked(bytes);
      this.log.debug('layer unpacked', { ref: name, chainId: layer.chainId, ms: Date.now() - t0 });
      return staged;
    } catch (err) {
      compressed.destroy();
      throw err;
    }
  }

  /** A blob in the store holding the same uncompressed layer (same diff_id) as another image. */
  private async storedBlobForDiff(diffId: string): Promise<string | undefined> {
    for (const r of this.records.values()) {
      for (const l of r.layers) {
        if (l.diffId !== diffId) continue;
        const b = l.storedDigest ?? l.digest;
        if (await this.content.has(b)) return b;
      }
    }
    return undefined;
  }

  /** Registers a pulled image: merges with an existing record of the same id, moves the tag. */
  private commit(rec: ImageRecord): Promise<ImageRecord> {
    return this.lock.run('records', async () => {
      const existing = this.records.get(rec.id);
      const merged: ImageRecord = existing
        ? {
            ...rec,
            repoTags: union(existing.repoTags, rec.repoTags),
            repoDigests: union(existing.repoDigests, rec.repoDigests),
            pulledAt: existing.pulledAt,
          }
        : rec;
      // A tag names one image: take it from whichever image had it.
      for (const tag of rec.repoTags) {
        const otherId = this.byTag.get(tag);
        if (otherId && otherId !== rec.id) {
          const other = this.records.get(otherId);
          if (other) {
            const updated = { ...other, repoTags: other.repoTags.filter((t) => t !== tag) };
            await this.write(updated);
            this.log.info('tag moved to a newer image', { tag, from: otherId, to: rec.id });
          }
        }
      }
      await this.write(merged);
      return merged;
    });
  }

  private async write(rec: ImageRecord): Promise<void> {
    await atomicWriteJson(this.recordPath(rec.id), rec);
    const old = this.records.get(rec.id);
    if (old) this.unindex(old);
    this.index(rec);
    await this.statRecord(rec.id);
  }

  /** Keeps a record file's disk use (and its dir's, which grows with the records) for fsUsage(). */
  private async statRecord(id: string): Promise<void> {
    const [st, dir] = await Promise.all([
      fsp.stat(this.recordPath(id)).catch(() => undefined),
      fsp.stat(this.imagesDir).catch(() => undefined),
    ]);
    if (st && this.records.has(id)) this.recordBytes.set(id, st.blocks * 512);
    else this.recordBytes.delete(id);
    this.imagesDirBytes = (dir?.blocks ?? 0) * 512;
  }

  private recordPath(id: string): string {
    return path.join(this.imagesDir, `${id.slice('sha256:'.length)}.json`);
  }

  private index(rec: ImageRecord): void {
    this.records.set(rec.id, rec);
    for (const t of rec.repoTags) this.byTag.set(t, rec.id);
    for (const d of rec.repoDigests) this.byDigest.set(d, rec.id);
  }

  private unindex(rec: ImageRecord): void {
    this.records.delete(rec.id);
    for (const t of rec.repoTags) if (this.byTag.get(t) === rec.id) this.byTag.delete(t);
    for (const d of rec.repoDigests) if (this.byDigest.get(d) === rec.id) this.byDigest.delete(d);
  }

  // ---- remove ----

  async remove(refOrId: string): Promise<void> {
    await this.lock.run('records', async () => {
      const rec = this.get(refOrId);
      if (!rec) return;
      // cri-api (main line): removing an image by any one of its tags removes the image with all
      // its tags, as by its id or a digest.
      await fsp.rm(this.recordPath(rec.id), { force: true });
      this.unindex(rec);
      this.recordBytes.delete(rec.id);
      this.log.info('image removed', { id: rec.id, tags: rec.repoTags });
      await this.collectGarbage(`remove ${rec.id}`);
    });
    for (const k of [...this.readCache.keys()])
      if (!this.records.has(k.split('|')[0] as string)) this.readCache.delete(k);
  }

  /**
   * Frees layers and blobs no record references: layers that no container snapshot stands on and no
   * running pull uses (removed top-down), then blobs.
   */
  private async collectGarbage(why: string): Promise<void> {
    const keepChains = new Set<string>(this.busyChains.keys());
    const keepBlobs = new Set<string>(this.busyBlobs.keys());
    for (const r of this.records.values()) {
      for (const b of referencedBlobs(r)) keepBlobs.add(b);
      for (const l of r.layers) keepChains.add(l.chainId);
    }
    const snap = this.opts.snapshotter;
    let inUse: Set<string>;
    try {
      inUse = await snap.layersInUse();
    } catch (err) {
      this.log.warn('cannot list layers in use; keeping all layers', { error: errMessage(err) });
      return;
    }
    // Chain IDs do not tell a layer's depth, so a removal the snapshotter refuses is retried after
    // the others are gone.
    let pending = (await snap.listLayers()).filter((c) => !keepChains.has(c) && !inUse.has(c));
    let freed = 0;
    for (let round = 0; round < 3 && pending.length; round++) {
      const failed: string[] = [];
      for (const c of pending) {
        try {
          await snap.removeLayer(c);
          freed++;
        } catch (err) {
          failed.push(c);
          if (round === 2) this.log.warn('cannot remove layer', { chainId: c, error: errMessage(err) });
        }
      }
      pending = failed;
    }
    let blobs = 0;
    for (const b of await this.content.list()) {
      if (!keepBlobs.has(b)) {
        await this.content.delete(b);
        blobs++;
      }
    }
    if (freed + blobs > 0) this.log.info('freed unused image data', { why, layers: freed, blobs });
  }

  // ---- files and usage ----

  async readFile(image: ImageRecord, filePath: string): Promise<Buffer | undefined> {
    const key = `${image.id}|${filePath}`;
    if (this.readCache.has(key)) return this.readCache.get(key);
    const dirs: string[] = [];
    for (const l of image.layers) {
      const dir = await this.opts.snapshotter.layerDir(l.chainId);
      if (!dir)
        throw failedPrecondition(
          `layer ${short(l.digest)} of image ${short(image.id)} is not unpacked; pull the image again`,
        );
      dirs.push(dir);
    }
    const data = await readMergedFile(dirs, filePath);
    if (this.readCache.size >= READ_CACHE_MAX)
      this.readCache.delete(this.readCache.keys().next().value as string);
    this.readCache.set(key, data);
    return data;
  }

  /** From memory only (see the top of this file): never walks or stats per call. */
  async fsUsage(): Promise<{ mountpoint: string; bytes: number; inodes: number }> {
    const c = this.content.usage();
    const s = await this.opts.snapshotter.fsUsage();
    let recBytes = this.imagesDirBytes;
    for (const b of this.recordBytes.values()) recBytes += b;
    return {
      mountpoint: this.mountpoint,
      bytes: c.bytes + s.bytes + recBytes,
      inodes: c.inodes + s.inodes + this.recordBytes.size + 1,
    };
  }

  /** The mount point holding the root (found once at init). */
  fsMountpoint(): string {
    return this.mountpoint;
  }
}

/**
 * Destroys `src` with the reason once `stop` aborts (at once when it already has): a stopped pull
 * ends its other layers' reads. Returns the unhooking.
 */
function destroyOnStop(src: Readable, stop: AbortSignal): () => void {
  const onStop = (): void => {
    src.destroy(stop.reason instanceof Error ? stop.reason : new Error('pull stopped'));
  };
  stop.addEventListener('abort', onStop, { once: true });
  if (stop.aborted) onStop();
  return () => stop.removeEventListener('abort', onStop);
}

/** The parts of a config Berth keeps (config-scan.ts KEPT_KEYS). */
function keptConfig(c: ImageConfig): ImageConfig {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (KEPT_KEYS.has(k)) out[k] = v;
  return out as ImageConfig;
}

function referencedBlobs(r: ImageRecord): string[] {
  return [
    r.manifestDigest,
    ...(r.platformManifestDigest ? [r.platformManifestDigest] : []),
    r.id,
    ...r.layers.map((l) => l.storedDigest ?? l.digest),
  ];
}

function acquire(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function release(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 1) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}

/** Integrity and limit errors name the image they happened in (the caller may pull several). */
function namingRef(err: unknown, name: string): unknown {
  if (!isBerthError(err) || err.message.includes(name)) return err;
  if (err.code !== Status.DATA_LOSS && err.code !== Status.RESOURCE_EXHAUSTED) return err;
  return new BerthError(err.code, `${name}: ${err.message}`, { cause: err });
}

/** Checks the shape of a record read from disk; throws when it is not one of ours. */
function checkRecord(v: unknown, hex: string): ImageRecord {
  const r = v as ImageRecord;
  const strs = (a: unknown): boolean => Array.isArray(a) && a.every((x) => typeof x === 'string');
  if (typeof r !== 'object' || r === null) throw new Error('not an object');
  if (r.id !== `sha256:${hex}`) throw new Error('id does not match the file name');
  if (!strs(r.repoTags) || !strs(r.repoDigests)) throw new Error('repoTags/repoDigests missing');
  if (typeof r.manifestDigest !== 'string' || typeof r.size !== 'number')
    throw new Error('manifest fields missing');
  if (
    !Array.isArray(r.layers) ||
    !r.layers.every((l) => typeof l?.chainId === 'string' && typeof l.digest === 'string')
  )
    throw new Error('layers missing');
  if (typeof r.config !== 'object' || r.config === null) throw new Error('config missing');
  return r;
}

/** The mount point holding `p`: the longest mount point in /proc/self/mountinfo that contains it. */
export async function mountpointOf(p: string): Promise<string> {
  let text: string;
  try {
    text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return '/';
  }
  const real = await fsp.realpath(p).catch(() => path.resolve(p));
  let best = '/';
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const dir = mp.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if ((real === dir || real.startsWith(dir === '/' ? '/' : `${dir}/`)) && dir.length > best.length)
      best = dir;
  }
  return best;
}
