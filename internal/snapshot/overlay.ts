// The overlayfs snapshotter. On disk, under `root`:
//   layers/<chain id hex>/fs         the unpacked layer (an overlay lower dir)
//   layers/<chain id hex>/meta.json  { chainId, parent, size, inodes, link, created }
//   l/<link>                         short symlink -> ../layers/<hex>/fs (keeps mount options short)
//   snapshots/<key>/{upper,work}     a container's writable layer
//   snapshots/<key>/meta.json        { key, parents (lowest first), created }
// Layers are unpacked into `layers/<hex>.tmp-*` and renamed into place once complete, snapshots
// likewise; whatever a crash leaves with `.tmp-` in its name is removed by init(). Removal renames
// to a `.tmp-` name first, so a crash mid-delete is also finished by init().
//
// Mount options: overlayfs takes all of them in one page (4095 bytes). lowerdir lists each layer
// as `<root>/l/<10 hex chars>`, 38 bytes at the default root, so about 95 layers fit at
// /var/lib/berth/snapshots (docker caps images at 128 and real images rarely pass 40); prepare()
// refuses a stack that does not fit, with a message that says so.
import { promises as fsp, existsSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, short } from '../errors';
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
import { diskUsage } from './usage';
import type { LayerInfo, MountSpec, SnapshotInfo, Snapshotter, Usage } from './types';

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
  private readonly locks = new KeyedMutex();
  private layers = new Map<string, LayerMeta>();
  private snapshots = new Map<string, SnapshotMeta>();
  private loaded?: Promise<void>;

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
  }

  async init(): Promise<void> {
    for (const d of [this.root, this.layersDir, this.linksDir, this.snapshotsDir]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o700 });
    }
    const layerTmp = await cleanTempFiles(this.layersDir);
    const snapTmp = await cleanTempFiles(this.snapshotsDir);
    if (layerTmp + snapTmp > 0) {
      this.log.info('removed leftovers of interrupted snapshot operations', {
        layers: layerTmp,
        snapshots: snapTmp,
      });
    }
    this.loaded = this.load();
    await this.loaded;
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
    this.layers = layers;
    this.snapshots = snapshots;
  }

  /** Recreates missing short links and drops links no layer owns. */
  private async repairLinks(): Promise<void> {
    const wanted = new Map<string, string>();
    for (const m of this.layers.values()) wanted.set(m.link, this.linkTarget(m.chainId));
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

  async applyLayer(chainId: string, parentChainId: string | undefined, tar: Readable): Promise<LayerInfo> {
    let hex: string;
    try {
      hex = chainHex(chainId);
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
        throw failedPrecondition(
          `parent layer ${short(parentChainId)} of layer ${short(chainId)} is not unpacked`,
        );
      }
      const started = Date.now();
      const tmp = path.join(this.layersDir, `${hex}${TMP_MARK}${rand()}`);
      let link: string | undefined;
      try {
        await fsp.mkdir(tmp, { mode: 0o700 });
        await fsp.mkdir(path.join(tmp, 'fs'), { mode: 0o755 });
        const { size, inodes } = await applyLayerTar(path.join(tmp, 'fs'), tar, { log: this.log });
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
        this.log.debug('layer applied', { chainId, size, inodes, ms: Date.now() - started });
        return layerInfo(meta);
      } catch (err) {
        tar.destroy();
        await fsp.rm(tmp, { recursive: true, force: true });
        if (link) await fsp.rm(path.join(this.linksDir, link), { force: true });
        throw err;
      }
    });
  }

  /** A fresh short name in l/ pointing at the layer's (future) fs dir. */
  private async makeLink(chainId: string): Promise<string> {
    for (;;) {
      const name = randomBytes(5).toString('hex');
      try {
        await fsp.symlink(this.linkTarget(chainId), path.join(this.linksDir, name));
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

  async prepare(key: string, parents: string[]): Promise<MountSpec> {
    checkKey(key);
    for (const p of parents) chainHex(p);
    await this.ready();
    return this.locks.run(REFS_LOCK, async () => {
      const dir = path.join(this.snapshotsDir, key);
      if (this.snapshots.has(key) || existsSync(dir))
        throw alreadyExists(`snapshot ${short(key)} already exists`);
      const metas = this.layerMetas(key, parents);
      const spec = this.mountSpec(key, metas);
      const tmp = `${dir}${TMP_MARK}${rand()}`;
      try {
        await fsp.mkdir(tmp, { mode: 0o700 });
        const upper = path.join(tmp, 'upper');
        await fsp.mkdir(upper, { mode: 0o755 });
        await fsp.mkdir(path.join(tmp, 'work'), { mode: 0o700 });
        // The merged root takes its owner and mode from the upper dir: copy the top layer's.
        const top = metas[metas.length - 1];
        if (top) {
          const st = await fsp.lstat(path.join(this.layersDir, chainHex(top.chainId), 'fs'));
          await fsp.lchown(upper, st.uid, st.gid);
          await fsp.chmod(upper, st.mode & 0o7777);
        }
        const meta: SnapshotMeta = { key, parents: [...parents], created: new Date().toISOString() };
        await atomicWriteJson(path.join(tmp, 'meta.json'), meta);
        await fsp.rename(tmp, dir);
        await fsyncDir(this.snapshotsDir);
        this.snapshots.set(key, meta);
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

  private mountSpec(key: string, metas: LayerMeta[]): MountSpec {
    const dir = path.join(this.snapshotsDir, key);
    const upper = path.join(dir, 'upper');
    if (metas.length === 0) return { type: 'bind', source: upper, options: ['rbind', 'rw'] };
    // overlayfs lists the top-most lower dir first.
    const lower = metas
      .map((m) => path.join(this.linksDir, m.link))
      .reverse()
      .join(':');
    const options = [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${path.join(dir, 'work')}`];
    // index=off where the kernel knows the option (as containerd does): snapshots never need
    // the inode index, and it would tie an upper dir to the exact lower dirs it first saw.
    if (existsSync(OVERLAY_INDEX_PARAM)) options.unshift('index=off');
    const len = options.join(',').length;
    if (len > MAX_MOUNT_DATA) {
      throw failedPrecondition(
        `snapshot ${short(key)}: overlay options for ${metas.length} layers need ${len} bytes, over the kernel's ` +
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
    return this.mountSpec(key, this.layerMetas(key, meta.parents));
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
        return;
      }
      const doomed = `${dir}${TMP_MARK}rm-${rand()}`;
      await fsp.rename(dir, doomed);
      this.snapshots.delete(key);
      await fsyncDir(this.snapshotsDir);
      await fsp.rm(doomed, { recursive: true, force: true });
    });
  }

  async usage(key: string): Promise<Usage> {
    await this.ready();
    const meta = this.snapshots.get(key);
    if (!meta) throw notFound(`snapshot ${short(key)} not found`);
    return diskUsage(this.toInfo(meta).upperDir);
  }

  async fsUsage(): Promise<Usage & { mountpoint: string }> {
    await this.ready();
    // Layers are immutable: their sizes were measured when they were applied.
    let bytes = 0;
    let inodes = 0;
    for (const m of this.layers.values()) {
      bytes += m.size;
      inodes += m.inodes;
    }
    const snaps = await diskUsage(this.snapshotsDir);
    return { bytes: bytes + snaps.bytes, inodes: inodes + snaps.inodes, mountpoint: this.root };
  }
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
