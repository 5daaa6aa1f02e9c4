// The overlayfs snapshotter. On disk, under `root`:
//   layers/<chain id hex>/fs         the unpacked layer (an overlay lower dir)
//   layers/<chain id hex>/meta.json  { chainId, parent, size, inodes, link, created }
//   l/<link>                         short symlink -> ../layers/<hex>/fs (keeps mount options short)
//   snapshots/<key>/{upper,work}     a container's writable layer
//   snapshots/<key>/meta.json        { key, parents (lowest first), created, idmap? }
//   mapped/<hash>/{fs,meta.json}     a layer copied with owners shifted into a user-namespace
//                                    mapping (idmap.ts); hash = mappedKey(chain id, mapping). Kept
//                                    while a snapshot stands on it, removed with the last one.
// Layers are unpacked into `layers/<hex>.tmp-*` and renamed into place once complete, snapshots
// likewise; whatever a crash leaves with `.tmp-` in its name is removed by init(). Removal renames
// to a `.tmp-` name first, so a crash mid-delete is also finished by init().
//
// Disk usage (ImageFsInfo, container stats) is answered from memory, never by a walk per call:
// layers and id-mapped copies are immutable, so their size was measured once when they were made
// (kept in meta.json; a layer whose meta.json lacks it is measured once in the background and the
// figure written back), plus the few entries around them (their dir, meta.json, short link),
// lstat-ed once when made or loaded. Container snapshots change all the time: one background
// walker (startUsageRefresh) measures every snapshot dir every interval, in slices that give the
// event loop back every 2 ms, and a new snapshot promptly after prepare(); cachedUsage() and
// fsUsage() read what it found, so their figures are at most one interval (plus a walk) old.
//
// Mount options: overlayfs takes all of them in one page (4095 bytes). lowerdir lists each layer
// as `<root>/l/<10 hex chars>`, 38 bytes at the default root, so about 95 layers fit at
// /var/lib/berth/snapshots (docker caps images at 128 and real images rarely pass 40); prepare()
// refuses a stack that does not fit, with a message that says so.
import { promises as fsp, existsSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { alreadyExists, errMessage, failedPrecondition, invalidArgument, notFound, short } from '../errors';
import type { Logger } from '../log';
import {
  atomicWriteJson,
  cleanTempFiles,
  fsyncDir,
  quarantine,
  readJsonIfExists,
  TMP_MARK,
} from '../util/fs';
import { KeyedMutex } from '../util/keyed-mutex';
import { native } from '../util/native';
import { applyLayerTar } from './apply';
import { checkIdMap, copyLayerMapped, mappedKey, toHost, type IdMap } from './idmap';
import { DEFAULT_SLICE_MS, Slicer } from '../util/slicer';
import { diskUsage } from './usage';
import { allOrFirstError } from '../util/settle';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type {
  ApplyLayerOptions,
  LayerApplier,
  LayerInfo,
  MountSpec,
  PrepareOptions,
  SnapshotInfo,
  Snapshotter,
  StagedLayer,
  Usage,
} from './types';

/** A layer unpacked into its temp dir, not yet published (unpackStaged, then publish). */
interface Unpacked {
  chainId: string;
  tmp: string;
  size: number;
  inodes: number;
  /** Date.now() when unpacking began */
  started: number;
}

export interface OverlaySnapshotterOptions {
  /** e.g. /var/lib/berth/snapshots */
  root: string;
  log: Logger;
  /**
   * syncfs(2) each layer before publishing it, so a layer that exists survives power loss, not
   * just a daemon crash. Off by default: it costs a file system flush per layer.
   */
  syncLayers?: boolean;
}

interface LayerMeta {
  chainId: string;
  parent?: string;
  size: number;
  inodes: number;
  link: string;
  created: string;
}

interface SnapshotMeta {
  key: string;
  parents: string[];
  created: string;
  /** the snapshot stands on id-mapped copies of its parents */
  idmap?: IdMap;
  /** a read-only view: mounted without its upper dir (PrepareOptions.readOnly) */
  readOnly?: boolean;
}

/** A container snapshot's disk use: its writable (upper) dir, and its whole dir. */
interface SnapshotUsage {
  writable: Usage;
  total: Usage;
}

/** What the background walker still has to measure, and the walk in progress. */
interface UsageWalk {
  /** every snapshot, the fixed dirs and layers without a measured size */
  full: boolean;
  keys: Set<string>;
  running?: Promise<void>;
  /** aborts the walk in progress (stopUsageRefresh) */
  abort?: AbortController;
}

interface MappedMeta {
  /** mappedKey(chainId, idmap): the directory name */
  key: string;
  chainId: string;
  idmap: IdMap;
  link: string;
  size: number;
  inodes: number;
  created: string;
}

/** Largest mount(2) data the kernel accepts: one page, NUL included (4 KiB pages assumed). */
export const MAX_MOUNT_DATA = 4095;
const CHAIN_ID = /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/;
const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const REFS_LOCK = 'refs';
const OVERLAY_INDEX_PARAM = '/sys/module/overlay/parameters/index';

export function isChainId(s: string): boolean {
  return CHAIN_ID.test(s);
}

function chainHex(chainId: string): string {
  if (!CHAIN_ID.test(chainId)) throw invalidArgument(`invalid layer chain ID '${short(chainId)}'`);
  return chainId.slice(chainId.indexOf(':') + 1);
}

function checkKey(key: string): void {
  if (!KEY.test(key) || key.includes(TMP_MARK)) {
    throw invalidArgument(`invalid snapshot key '${short(key)}' (want [A-Za-z0-9_.-], at most 128 chars)`);
  }
}

const rand = (): string => randomBytes(6).toString('hex');

export class OverlaySnapshotter implements Snapshotter {
  readonly root: string;
  private readonly log: Logger;
  private readonly syncLayers: boolean;
  private readonly layersDir: string;
  private readonly linksDir: string;
  private readonly snapshotsDir: string;
  private readonly mappedDir: string;
  private readonly locks = new KeyedMutex();
  private layers = new Map<string, LayerMeta>();
  private snapshots = new Map<string, SnapshotMeta>();
  private mapped = new Map<string, MappedMeta>();
  /** mapped copies being built or about to be stacked on: garbage collection leaves them */
  private readonly mappedPending = new Map<string, number>();
  private loaded?: Promise<void>;
  /** per layer / mapped copy: its dir, meta.json and short link (the fs/ tree is in its meta) */
  private readonly layerExtra = new Map<string, Usage>();
  private readonly mappedExtra = new Map<string, Usage>();
  /** the snapshotter's own dirs (root, layers/, l/, snapshots/, mapped/) */
  private fixedUsage: Usage = { bytes: 0, inodes: 0 };
  /** per container snapshot, as the background walker last found it */
  private readonly snapUsage = new Map<string, SnapshotUsage>();
  private readonly usageWalk: UsageWalk = { full: false, keys: new Set() };
  private usageTimer: NodeJS.Timeout | undefined;
  private usageStopped = false;

  constructor(opts: OverlaySnapshotterOptions) {
    const root = path.resolve(opts.root);
    // These characters separate or escape overlay mount options.
    if (/[,:\\\s]/.test(root))
      throw invalidArgument(`snapshotter root '${short(root)}' must not contain , : \\ or spaces`);
    this.root = root;
    this.log = opts.log;
    this.syncLayers = opts.syncLayers ?? false;
    this.layersDir = path.join(root, 'layers');
    this.linksDir = path.join(root, 'l');
    this.snapshotsDir = path.join(root, 'snapshots');
    this.mappedDir = path.join(root, 'mapped');
  }

  async init(): Promise<void> {
    for (const d of [this.root, this.layersDir, this.linksDir, this.snapshotsDir, this.mappedDir]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o700 });
    }
    const layerTmp = await cleanTempFiles(this.layersDir);
    const snapTmp = await cleanTempFiles(this.snapshotsDir);
    await cleanTempFiles(this.mappedDir);
    if (layerTmp + snapTmp > 0) {
      this.log.info('removed leftovers of interrupted snapshot operations', {
        layers: layerTmp,
        snapshots: snapTmp,
      });
    }
    this.loaded = this.load();
    await this.loaded;
    await this.locks.run(REFS_LOCK, () => this.collectMapped());
    await this.repairLinks();
  }

  private ready(): Promise<void> {
    if (!this.loaded) this.loaded = this.load();
    return this.loaded;
  }

  private async load(): Promise<void> {
    const layers = new Map<string, LayerMeta>();
    for (const name of await readdirIfExists(this.layersDir)) {
      if (name.includes(TMP_MARK)) continue;
      const dir = path.join(this.layersDir, name);
      let meta: LayerMeta | undefined;
      try {
        meta = await readJsonIfExists<LayerMeta>(path.join(dir, 'meta.json'));
      } catch {
        meta = undefined;
      }
      if (
        !meta ||
        !isChainId(String(meta.chainId)) ||
        chainHex(meta.chainId) !== name ||
        typeof meta.link !== 'string'
      ) {
        // Metadata is written before the layer is published, so this is damage; layers can be
        // pulled again, so drop it rather than keep an unusable directory.
        this.log.warn('removing layer with missing or corrupt metadata', { layer: short(name) });
        const doomed = `${dir}${TMP_MARK}corrupt-${rand()}`;
        await fsp.rename(dir, doomed);
        await fsp.rm(doomed, { recursive: true, force: true });
        continue;
      }
      layers.set(meta.chainId, meta);
    }
    const snapshots = new Map<string, SnapshotMeta>();
    for (const name of await readdirIfExists(this.snapshotsDir)) {
      if (name.includes(TMP_MARK)) continue;
      const file = path.join(this.snapshotsDir, name, 'meta.json');
      let meta: SnapshotMeta | undefined;
      try {
        meta = await readJsonIfExists<SnapshotMeta>(file);
      } catch {
        meta = undefined;
      }
      if (!meta || meta.key !== name || !Array.isArray(meta.parents)) {
        // Its upper dir may hold a container's data: keep it for inspection, out of the index.
        const moved = existsSync(file) ? await quarantine(file) : undefined;
        this.log.warn('snapshot with missing or corrupt metadata left out', { snapshot: short(name), moved });
        continue;
      }
      snapshots.set(meta.key, meta);
    }
    const mapped = new Map<string, MappedMeta>();
    for (const name of await readdirIfExists(this.mappedDir)) {
      if (name.includes(TMP_MARK)) continue;
      let meta: MappedMeta | undefined;
      try {
        meta = await readJsonIfExists<MappedMeta>(path.join(this.mappedDir, name, 'meta.json'));
      } catch {
        meta = undefined;
      }
      if (!meta || meta.key !== name || typeof meta.link !== 'string') {
        // a cache entry: rebuilt on demand, so damage is simply dropped
        await this.dropMappedDir(name);
        continue;
      }
      mapped.set(name, meta);
    }
    this.layers = layers;
    this.snapshots = snapshots;
    this.mapped = mapped;
    // the few entries around each layer and copy: lstat-ed once here, kept in memory
    this.layerExtra.clear();
    this.mappedExtra.clear();
    for (const m of layers.values())
      this.layerExtra.set(
        m.chainId,
        await this.extraUsage(path.join(this.layersDir, chainHex(m.chainId)), m.link),
      );
    for (const m of mapped.values())
      this.mappedExtra.set(m.key, await this.extraUsage(path.join(this.mappedDir, m.key), m.link));
    this.fixedUsage = await this.measureFixed();
  }

  /** A layer's (or mapped copy's) dir and meta.json, and its short link: what its size leaves out. */
  private async extraUsage(dir: string, link: string): Promise<Usage> {
    return sumStats([dir, path.join(dir, 'meta.json'), path.join(this.linksDir, link)]);
  }

  private measureFixed(): Promise<Usage> {
    return sumStats([this.root, this.layersDir, this.linksDir, this.snapshotsDir, this.mappedDir]);
  }

  /** Recreates missing short links and drops links no layer owns. */
  private async repairLinks(): Promise<void> {
    const wanted = new Map<string, string>();
    for (const m of this.layers.values()) wanted.set(m.link, this.linkTarget(m.chainId));
    for (const m of this.mapped.values()) wanted.set(m.link, path.join('..', 'mapped', m.key, 'fs'));
    for (const name of await readdirIfExists(this.linksDir)) {
      const p = path.join(this.linksDir, name);
      const target = wanted.get(name);
      if (target !== undefined && (await fsp.readlink(p).catch(() => undefined)) === target) {
        wanted.delete(name);
        continue;
      }
      await fsp.rm(p, { force: true });
    }
    for (const [name, target] of wanted) {
      this.log.warn('recreating missing layer link', { link: name });
      await fsp.symlink(target, path.join(this.linksDir, name));
    }
  }

  private linkTarget(chainId: string): string {
    return path.join('..', 'layers', chainHex(chainId), 'fs');
  }

  async hasLayer(chainId: string): Promise<boolean> {
    await this.ready();
    return this.layers.has(chainId);
  }

  async layerDir(chainId: string): Promise<string | undefined> {
    await this.ready();
    return this.layers.has(chainId) ? path.join(this.layersDir, chainHex(chainId), 'fs') : undefined;
  }

  async applyLayer(
    chainId: string,
    parentChainId: string | undefined,
    tar: Readable,
    opts: ApplyLayerOptions = {},
  ): Promise<LayerInfo> {
    try {
      chainHex(chainId);
      if (parentChainId !== undefined) chainHex(parentChainId);
      await this.ready();
    } catch (err) {
      tar.destroy();
      throw err;
    }
    return this.locks.run(`layer:${chainId}`, async () => {
      const have = this.layers.get(chainId);
      if (have) {
        tar.destroy();
        return layerInfo(have);
      }
      if (parentChainId !== undefined && !this.layers.has(parentChainId)) {
        tar.destroy();
        throw this.parentMissing(parentChainId, chainId);
      }
      const staged = await this.unpackStaged(chainId, tar, opts);
      return this.publish(staged, parentChainId);
    });
  }

  async stageLayer(
    chainId: string,
    source: Readable | LayerApplier,
    opts: ApplyLayerOptions = {},
  ): Promise<StagedLayer> {
    try {
      chainHex(chainId);
      await this.ready();
    } catch (err) {
      if (typeof source !== 'function') source.destroy();
      throw err;
    }
    const staged = await this.unpackStaged(chainId, source, opts);
    let state: 'staged' | 'committed' | 'discarded' = 'staged';
    return {
      chainId,
      commit: async (parentChainId) => {
        if (parentChainId !== undefined) chainHex(parentChainId);
        if (state !== 'staged') throw new Error(`staged layer ${short(chainId)} is already ${state}`);
        state = 'committed';
        return this.locks.run(`layer:${chainId}`, async () => {
          const have = this.layers.get(chainId);
          if (have) {
            // another pull published it meanwhile: this copy is not needed
            await fsp.rm(staged.tmp, { recursive: true, force: true });
            return layerInfo(have);
          }
          if (parentChainId !== undefined && !this.layers.has(parentChainId)) {
            await fsp.rm(staged.tmp, { recursive: true, force: true });
            throw this.parentMissing(parentChainId, chainId);
          }
          return this.publish(staged, parentChainId);
        });
      },
      discard: async () => {
        if (state !== 'staged') return;
        state = 'discarded';
        await fsp.rm(staged.tmp, { recursive: true, force: true });
      },
    };
  }

  private parentMissing(parentChainId: string, chainId: string): Error {
    return failedPrecondition(
      `parent layer ${short(parentChainId)} of layer ${short(chainId)} is not unpacked`,
    );
  }

  /**
   * Unpacks `tar` into a fresh `layers/<hex>.tmp-*` dir (init() removes it after a crash); on any
   * error the dir is removed and the stream destroyed.
   */
  private async unpackStaged(
    chainId: string,
    source: Readable | LayerApplier,
    opts: ApplyLayerOptions,
  ): Promise<Unpacked> {
    const started = Date.now();
    const tmp = path.join(this.layersDir, `${chainHex(chainId)}${TMP_MARK}${rand()}`);
    try {
      await fsp.mkdir(tmp, { mode: 0o700 });
      await fsp.mkdir(path.join(tmp, 'fs'), { mode: 0o755 });
      const fsDir = path.join(tmp, 'fs');
      const { size, inodes } =
        typeof source === 'function'
          ? await source(fsDir)
          : await applyLayerTar(fsDir, source, { log: this.log, maxFileBytes: opts.maxFileBytes });
      return { chainId, tmp, size, inodes, started };
    } catch (err) {
      if (typeof source !== 'function') source.destroy();
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Publishes an unpacked dir as layer `chainId` (caller holds the layer lock). */
  private async publish(staged: Unpacked, parentChainId: string | undefined): Promise<LayerInfo> {
    const { chainId, tmp, size, inodes } = staged;
    const hex = chainHex(chainId);
    let link: string | undefined;
    try {
      link = await this.makeLink(chainId);
      const meta: LayerMeta = {
        chainId,
        parent: parentChainId,
        size,
        inodes,
        link,
        created: new Date().toISOString(),
      };
      await atomicWriteJson(path.join(tmp, 'meta.json'), meta);
      if (this.syncLayers) native().syncfs(tmp);
      await fsp.rename(tmp, path.join(this.layersDir, hex));
      await fsyncDir(this.layersDir);
      this.layers.set(chainId, meta);
      this.layerExtra.set(chainId, await this.extraUsage(path.join(this.layersDir, hex), link));
      this.log.debug('layer applied', { chainId, size, inodes, ms: Date.now() - staged.started });
      return layerInfo(meta);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      if (link) await fsp.rm(path.join(this.linksDir, link), { force: true });
      throw err;
    }
  }

  /** A fresh short name in l/ pointing at the layer's (future) fs dir. */
  private async makeLink(chainId: string, target = this.linkTarget(chainId)): Promise<string> {
    for (;;) {
      const name = randomBytes(5).toString('hex');
      try {
        await fsp.symlink(target, path.join(this.linksDir, name));
        return name;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  async removeLayer(chainId: string): Promise<void> {
    const hex = chainHex(chainId);
    await this.ready();
    await this.locks.run(`layer:${chainId}`, () =>
      this.locks.run(REFS_LOCK, async () => {
        const users = [...this.snapshots.values()]
          .filter((s) => s.parents.includes(chainId))
          .map((s) => s.key);
        if (users.length > 0) {
          const names = users.slice(0, 5).map((k) => short(k, 40));
          throw failedPrecondition(
            `layer ${short(chainId)} is in use by snapshot(s) ${names.join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}`,
          );
        }
        const meta = this.layers.get(chainId);
        const dir = path.join(this.layersDir, hex);
        if (!meta && !existsSync(dir)) return;
        const doomed = `${dir}${TMP_MARK}rm-${rand()}`;
        await fsp.rename(dir, doomed);
        await fsyncDir(this.layersDir);
        this.layers.delete(chainId);
        this.layerExtra.delete(chainId);
        if (meta) await fsp.rm(path.join(this.linksDir, meta.link), { force: true });
        await fsp.rm(doomed, { recursive: true, force: true });
      }),
    );
  }

  async listLayers(): Promise<string[]> {
    await this.ready();
    return [...this.layers.keys()];
  }

  async layersInUse(): Promise<Set<string>> {
    await this.ready();
    const used = new Set<string>();
    for (const s of this.snapshots.values()) for (const p of s.parents) used.add(p);
    return used;
  }

  async prepare(key: string, parents: string[], opts: PrepareOptions = {}): Promise<MountSpec> {
    checkKey(key);
    for (const p of parents) chainHex(p);
    const idmap = opts.idmap;
    if (idmap) checkIdMap(idmap);
    await this.ready();
    const readOnly = opts.readOnly === true;
    if (!idmap) return this.prepareLocked(key, parents, undefined, readOnly);
    // Mapped copies are built outside REFS_LOCK (a big layer takes a while to copy); the pending
    // count keeps collectMapped() off them until the snapshot that needs them exists.
    const hashes = parents.map((p) => mappedKey(p, idmap));
    for (const h of hashes) this.mappedPending.set(h, (this.mappedPending.get(h) ?? 0) + 1);
    let ok = false;
    try {
      this.layerMetas(key, parents);
      for (const p of parents) await this.ensureMapped(p, idmap);
      const spec = await this.prepareLocked(key, parents, idmap, readOnly);
      ok = true;
      return spec;
    } finally {
      for (const h of hashes) {
        const left = (this.mappedPending.get(h) ?? 1) - 1;
        if (left > 0) this.mappedPending.set(h, left);
        else this.mappedPending.delete(h);
      }
      if (!ok) await this.locks.run(REFS_LOCK, () => this.collectMapped());
    }
  }

  private prepareLocked(
    key: string,
    parents: string[],
    idmap: IdMap | undefined,
    readOnly: boolean,
  ): Promise<MountSpec> {
    return this.locks.run(REFS_LOCK, async () => {
      const dir = path.join(this.snapshotsDir, key);
      if (this.snapshots.has(key) || existsSync(dir))
        throw alreadyExists(`snapshot ${short(key)} already exists`);
      const links = this.lowerLinks(key, parents, idmap);
      const spec = this.mountSpec(key, links, readOnly);
      const tmp = `${dir}${TMP_MARK}${rand()}`;
      try {
        await fsp.mkdir(tmp, { mode: 0o700 });
        const upper = path.join(tmp, 'upper');
        // the steps that do not depend on each other run together: this is on the critical path
        // of every RunPodSandbox and CreateContainer
        const top = links[links.length - 1];
        // (all settled before a failure is thrown: the cleanup below must not race a mkdir)
        const [topStat] = await allOrFirstError([
          top ? fsp.stat(path.join(this.linksDir, top)) : undefined,
          fsp.mkdir(upper, { mode: 0o755 }),
          fsp.mkdir(path.join(tmp, 'work'), { mode: 0o700 }),
        ]);
        // The merged root takes its owner and mode from the upper dir: copy the top layer's.
        if (topStat) {
          // in this order: a chown may clear set-id bits that the chmod then sets
          await fsp.lchown(upper, topStat.uid, topStat.gid);
          await fsp.chmod(upper, topStat.mode & 0o7777);
        } else if (idmap) {
          await fsp.lchown(upper, toHost(0, idmap.uids), toHost(0, idmap.gids));
        }
        const meta: SnapshotMeta = {
          key,
          parents: [...parents],
          created: new Date().toISOString(),
          ...(idmap ? { idmap } : {}),
          ...(readOnly ? { readOnly } : {}),
        };
        await atomicWriteJson(path.join(tmp, 'meta.json'), meta);
        await fsp.rename(tmp, dir);
        await fsyncDir(this.snapshotsDir);
        this.snapshots.set(key, meta);
        // what it holds now (three entries and meta.json); the walker measures it again promptly
        const [writable, rest] = await Promise.all([
          sumStats([path.join(dir, 'upper')]),
          sumStats([dir, path.join(dir, 'meta.json'), path.join(dir, 'work')]),
        ]);
        this.snapUsage.set(key, { writable, total: addUsage(writable, rest) });
        this.usageWalk.keys.add(key);
        if (this.usageTimer) this.kickUsageWalk();
      } catch (err) {
        await fsp.rm(tmp, { recursive: true, force: true });
        throw err;
      }
      return spec;
    });
  }

  /** Metadata of `parents` (lowest first), checked to be present and to form one chain. */
  private layerMetas(key: string, parents: string[]): LayerMeta[] {
    return parents.map((p, i) => {
      const m = this.layers.get(p);
      if (!m) throw notFound(`layer ${short(p)} for snapshot ${short(key)} is not unpacked`);
      const below = i === 0 ? undefined : parents[i - 1];
      if (m.parent !== below) {
        throw failedPrecondition(
          `layer ${short(p)} sits on ${m.parent ? short(m.parent) : 'nothing'}, not on ${below ? short(below) : 'nothing'}`,
        );
      }
      return m;
    });
  }

  /** The short links of a snapshot's lower dirs, lowest first: the layers, or their mapped copies. */
  private lowerLinks(key: string, parents: string[], idmap: IdMap | undefined): string[] {
    const metas = this.layerMetas(key, parents);
    if (!idmap) return metas.map((m) => m.link);
    return parents.map((p) => {
      const m = this.mapped.get(mappedKey(p, idmap));
      if (!m)
        throw failedPrecondition(
          `the id-mapped copy of layer ${short(p)} for snapshot ${short(key)} is missing`,
        );
      return m.link;
    });
  }

  /** Builds the id-mapped copy of `chainId` unless it exists. Caller holds a pending count on it. */
  private async ensureMapped(chainId: string, idmap: IdMap): Promise<void> {
    const h = mappedKey(chainId, idmap);
    await this.locks.run(`mapped:${h}`, () =>
      // the layer lock keeps removeLayer from deleting the source while it is copied
      this.locks.run(`layer:${chainId}`, async () => {
        if (this.mapped.has(h)) return;
        if (!this.layers.has(chainId)) throw notFound(`layer ${short(chainId)} is not unpacked`);
        const started = Date.now();
        const tmp = path.join(this.mappedDir, `${h}${TMP_MARK}${rand()}`);
        let link: string | undefined;
        try {
          await fsp.mkdir(tmp, { mode: 0o700 });
          await copyLayerMapped(
            path.join(this.layersDir, chainHex(chainId), 'fs'),
            path.join(tmp, 'fs'),
            idmap,
          );
          const { bytes, inodes } = await diskUsage(path.join(tmp, 'fs'));
          link = await this.makeLink(chainId, path.join('..', 'mapped', h, 'fs'));
          const meta: MappedMeta = {
            key: h,
            chainId,
            idmap,
            link,
            size: bytes,
            inodes,
            created: new Date().toISOString(),
          };
          await atomicWriteJson(path.join(tmp, 'meta.json'), meta);
          await fsp.rename(tmp, path.join(this.mappedDir, h));
          await fsyncDir(this.mappedDir);
          this.mapped.set(h, meta);
          this.mappedExtra.set(h, await this.extraUsage(path.join(this.mappedDir, h), link));
          this.log.debug('id-mapped layer copy made', { chainId, key: h, ms: Date.now() - started });
        } catch (err) {
          await fsp.rm(tmp, { recursive: true, force: true });
          if (link) await fsp.rm(path.join(this.linksDir, link), { force: true });
          throw err;
        }
      }),
    );
  }

  /** Removes mapped copies that no snapshot stands on and no prepare is about to. Holds REFS_LOCK. */
  private async collectMapped(): Promise<void> {
    const used = new Set<string>();
    for (const s of this.snapshots.values())
      if (s.idmap) for (const p of s.parents) used.add(mappedKey(p, s.idmap));
    for (const [h, m] of [...this.mapped]) {
      if (used.has(h) || this.mappedPending.has(h)) continue;
      this.mapped.delete(h);
      this.mappedExtra.delete(h);
      await fsp.rm(path.join(this.linksDir, m.link), { force: true });
      await this.dropMappedDir(h);
    }
  }

  private async dropMappedDir(name: string): Promise<void> {
    const dir = path.join(this.mappedDir, name);
    if (!existsSync(dir)) return;
    const doomed = `${dir}${TMP_MARK}rm-${rand()}`;
    await fsp.rename(dir, doomed);
    await fsp.rm(doomed, { recursive: true, force: true });
  }

  private mountSpec(key: string, links: string[], readOnly = false): MountSpec {
    const dir = path.join(this.snapshotsDir, key);
    const upper = path.join(dir, 'upper');
    if (links.length === 0)
      return { type: 'bind', source: upper, options: ['rbind', readOnly ? 'ro' : 'rw'] };
    // overlayfs needs two lower dirs when it has no upper one: a one-layer view is a bind of it
    if (readOnly && links.length === 1)
      return { type: 'bind', source: path.join(this.linksDir, links[0] as string), options: ['rbind', 'ro'] };
    // overlayfs lists the top-most lower dir first.
    const lower = links
      .map((l) => path.join(this.linksDir, l))
      .reverse()
      .join(':');
    // lower dirs alone make a read-only overlay
    const options = readOnly
      ? [`lowerdir=${lower}`]
      : [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${path.join(dir, 'work')}`];
    // index=off where the kernel knows the option (as containerd does): snapshots never need
    // the inode index, and it would tie an upper dir to the exact lower dirs it first saw.
    if (!readOnly && existsSync(OVERLAY_INDEX_PARAM)) options.unshift('index=off');
    const len = options.join(',').length;
    if (len > MAX_MOUNT_DATA) {
      throw failedPrecondition(
        `snapshot ${short(key)}: overlay options for ${links.length} layers need ${len} bytes, over the kernel's ` +
          `${MAX_MOUNT_DATA}-byte limit (use a shorter snapshotter root or an image with fewer layers)`,
      );
    }
    return { type: 'overlay', source: 'overlay', options };
  }

  async mounts(key: string): Promise<MountSpec> {
    checkKey(key);
    await this.ready();
    const meta = this.snapshots.get(key);
    if (!meta) throw notFound(`snapshot ${short(key)} not found`);
    return this.mountSpec(key, this.lowerLinks(key, meta.parents, meta.idmap), meta.readOnly === true);
  }

  async info(key: string): Promise<SnapshotInfo | undefined> {
    await this.ready();
    const meta = this.snapshots.get(key);
    return meta && this.toInfo(meta);
  }

  async list(): Promise<SnapshotInfo[]> {
    await this.ready();
    return [...this.snapshots.values()].map((m) => this.toInfo(m));
  }

  private toInfo(m: SnapshotMeta): SnapshotInfo {
    const dir = path.join(this.snapshotsDir, m.key);
    return {
      key: m.key,
      parents: [...m.parents],
      upperDir: path.join(dir, 'upper'),
      workDir: path.join(dir, 'work'),
    };
  }

  async remove(key: string): Promise<void> {
    checkKey(key);
    await this.ready();
    await this.locks.run(REFS_LOCK, async () => {
      const dir = path.join(this.snapshotsDir, key);
      if (!existsSync(dir)) {
        this.snapshots.delete(key);
        this.snapUsage.delete(key);
        return;
      }
      const doomed = `${dir}${TMP_MARK}rm-${rand()}`;
      await fsp.rename(dir, doomed);
      const had = this.snapshots.get(key);
      this.snapshots.delete(key);
      this.snapUsage.delete(key);
      await fsyncDir(this.snapshotsDir);
      await fsp.rm(doomed, { recursive: true, force: true });
      if (had?.idmap) await this.collectMapped();
    });
  }

  /** Walks the snapshot's writable layer now (and keeps the figure). Not for request paths. */
  async usage(key: string): Promise<Usage> {
    await this.ready();
    const meta = this.snapshots.get(key);
    if (!meta) throw notFound(`snapshot ${short(key)} not found`);
    await this.measureSnapshot(key, new Slicer());
    const u = this.snapUsage.get(key);
    if (!u) throw notFound(`snapshot ${short(key)} not found`);
    return { ...u.writable };
  }

  cachedUsage(key: string): Usage | undefined {
    const u = this.snapUsage.get(key);
    return u && { ...u.writable };
  }

  async fsUsage(): Promise<Usage & { mountpoint: string }> {
    await this.ready();
    // All from memory: layer and copy sizes measured once, snapshots as the walker last saw them.
    let bytes = this.fixedUsage.bytes;
    let inodes = this.fixedUsage.inodes;
    const add = (u: Usage | undefined): void => {
      bytes += u?.bytes ?? 0;
      inodes += u?.inodes ?? 0;
    };
    for (const m of this.layers.values()) {
      // (a size never measured is being measured by the walker)
      if (Number.isFinite(m.size) && Number.isFinite(m.inodes)) add({ bytes: m.size, inodes: m.inodes });
      add(this.layerExtra.get(m.chainId));
    }
    for (const m of this.mapped.values()) {
      add({ bytes: m.size, inodes: m.inodes });
      add(this.mappedExtra.get(m.key));
    }
    for (const u of this.snapUsage.values()) add(u.total);
    return { bytes, inodes, mountpoint: this.root };
  }

  /**
   * Starts the background walker: every `intervalMs` it measures every container snapshot (one
   * after the other, in 2 ms slices), the snapshotter's own dirs, and any layer whose size was
   * never measured; a snapshot made by prepare() is measured promptly. The first walk starts now.
   * The timer is unref'd.
   */
  startUsageRefresh(intervalMs: number): void {
    if (this.usageTimer) return;
    this.usageStopped = false;
    this.usageTimer = setInterval(() => {
      this.usageWalk.full = true;
      this.kickUsageWalk();
    }, intervalMs);
    this.usageTimer.unref();
    this.usageWalk.full = true;
    this.kickUsageWalk();
  }

  /** Stops the walker; a walk in progress ends at its next slice (2 ms at most). */
  async stopUsageRefresh(): Promise<void> {
    if (this.usageTimer) clearInterval(this.usageTimer);
    this.usageTimer = undefined;
    this.usageStopped = true;
    this.usageWalk.abort?.abort();
    await this.usageWalk.running?.catch(() => undefined);
  }

  /** Measures everything (or the given snapshots) now, through the walker; resolves when done. */
  async refreshUsage(keys?: string[]): Promise<void> {
    await this.ready();
    if (keys) for (const k of keys) this.usageWalk.keys.add(k);
    else this.usageWalk.full = true;
    const wasStopped = this.usageStopped;
    this.usageStopped = false;
    try {
      this.kickUsageWalk();
      await this.usageWalk.running;
    } finally {
      this.usageStopped = wasStopped && !this.usageTimer;
    }
  }

  /** Runs the walker unless it runs already (it picks up what was queued meanwhile). */
  private kickUsageWalk(): void {
    const w = this.usageWalk;
    if (w.running || this.usageStopped) return;
    const ac = new AbortController();
    w.abort = ac;
    const slicer = new Slicer(DEFAULT_SLICE_MS, ac.signal);
    w.running = (async () => {
      try {
        while (!this.usageStopped && (w.full || w.keys.size > 0)) {
          const full = w.full;
          w.full = false;
          const keys = full ? [...this.snapshots.keys()] : [...w.keys];
          w.keys.clear();
          const t0 = Date.now();
          if (full) {
            this.fixedUsage = await this.measureFixed();
            await this.measureUnsizedLayers();
          }
          for (const k of keys) {
            if (this.usageStopped) break;
            try {
              await this.measureSnapshot(k, slicer);
            } catch (err) {
              if (ac.signal.aborted) throw err;
              // one unreadable snapshot keeps its last figure; the others are still measured
              this.log.warn('measuring a snapshot failed', { snapshot: short(k), error: errMessage(err) });
            }
          }
          if (full) {
            for (const k of this.snapUsage.keys()) if (!this.snapshots.has(k)) this.snapUsage.delete(k);
            this.log.debug('snapshot usage refreshed', { snapshots: keys.length, ms: Date.now() - t0 });
          }
        }
      } catch (err) {
        if (!ac.signal.aborted)
          this.log.warn('measuring snapshot disk usage failed', { error: errMessage(err) });
      } finally {
        w.running = undefined;
        w.abort = undefined;
      }
    })();
  }

  /** Walks one container snapshot's dir (upper separately) and keeps the figures. */
  private async measureSnapshot(key: string, slicer: Slicer): Promise<void> {
    const meta = this.snapshots.get(key);
    if (!meta) {
      this.snapUsage.delete(key);
      return;
    }
    const dir = path.join(this.snapshotsDir, key);
    const writable = await diskUsage(path.join(dir, 'upper'), { slicer });
    const work = await diskUsage(path.join(dir, 'work'), { slicer });
    const rest = await sumStats([dir, path.join(dir, 'meta.json')]);
    // removed (or removed and made again) meanwhile: the figure is not its
    if (this.snapshots.get(key) !== meta) return;
    this.snapUsage.set(key, { writable, total: addUsage(addUsage(writable, work), rest) });
  }

  /** Layers whose meta.json has no size (written by an older Berth): measured once, written back. */
  private async measureUnsizedLayers(): Promise<void> {
    for (const m of [...this.layers.values()]) {
      if (Number.isFinite(m.size) && Number.isFinite(m.inodes)) continue;
      await this.locks.run(`layer:${m.chainId}`, async () => {
        if (this.layers.get(m.chainId) !== m) return;
        const dir = path.join(this.layersDir, chainHex(m.chainId));
        const u = await diskUsage(path.join(dir, 'fs'));
        const meta: LayerMeta = { ...m, size: u.bytes, inodes: u.inodes };
        await atomicWriteJson(path.join(dir, 'meta.json'), meta);
        this.layers.set(m.chainId, meta);
        this.log.info('measured a layer without a recorded size', { chainId: m.chainId, bytes: u.bytes });
      });
      await yieldToLoop();
    }
  }
}

function addUsage(a: Usage, b: Usage): Usage {
  return { bytes: a.bytes + b.bytes, inodes: a.inodes + b.inodes };
}

/** Blocks and inodes of a few paths (each counted alone: no walk); missing ones count nothing. */
async function sumStats(paths: string[]): Promise<Usage> {
  const sts = await Promise.all(paths.map((p) => fsp.lstat(p).catch(() => undefined)));
  let bytes = 0;
  let inodes = 0;
  for (const st of sts) {
    if (!st) continue;
    bytes += st.blocks * 512;
    inodes++;
  }
  return { bytes, inodes };
}

function layerInfo(m: LayerMeta): LayerInfo {
  return { chainId: m.chainId, size: m.size, inodes: m.inodes };
}

async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
