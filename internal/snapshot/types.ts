// The snapshotter's contract. Layers are read-only directories keyed by chain ID (the OCI chain
// ID of the layer and all below it); container snapshots are an upper and a work dir stacked on a
// list of layers. The rest of Berth sees only this interface.
import type { Readable } from 'node:stream';
import type { IdMap } from './idmap';

/** An overlay mount, in the OCI runtime spec's shape (type, source, options). */
export interface MountSpec {
  type: 'overlay' | 'bind';
  source: string;
  options: string[];
}

export interface PrepareOptions {
  /** user-namespace mapping whose root must own the snapshot's files */
  idmap?: IdMap;
  /**
   * A read-only view (an image volume): mounted from the layers alone, no upper dir in the mount
   * (one layer: a read-only bind of it; none: of the empty upper dir).
   */
  readOnly?: boolean;
}

export interface ApplyLayerOptions {
  /** largest apparent size of a sparse file in the layer (RESOURCE_EXHAUSTED beyond) */
  maxFileBytes?: number;
}

export interface LayerInfo {
  chainId: string;
  /** bytes used on disk by the unpacked layer */
  size: number;
  inodes: number;
}

/** A layer unpacked into a private dir, not yet visible: commit() publishes it, discard() drops it. */
export interface StagedLayer {
  chainId: string;
  /**
   * Publishes the layer on top of `parentChainId`, which must exist by then (FAILED_PRECONDITION
   * otherwise). When the layer appeared meanwhile (another pull), the staged copy is dropped and
   * the existing layer's info returned. Once only.
   */
  commit(parentChainId: string | undefined): Promise<LayerInfo>;
  /** Removes the staged dir; nothing after commit(). */
  discard(): Promise<void>;
}

export interface SnapshotInfo {
  key: string;
  /** chain IDs of the layers below, lowest first */
  parents: string[];
  upperDir: string;
  workDir: string;
}

export interface Usage {
  bytes: number;
  inodes: number;
}

/**
 * Fills the empty dir `fsDir` with a layer's tree (as applyLayerTar does) and says what it holds;
 * nothing may write there once it has settled.
 */
export type LayerApplier = (fsDir: string) => Promise<{ size: number; inodes: number }>;

export interface Snapshotter {
  /** Recovers on start: drops half-applied layers and half-prepared snapshots. */
  init(): Promise<void>;
  hasLayer(chainId: string): Promise<boolean>;
  /**
   * The directory holding a published layer's own tree (what overlayfs stacks as a lower dir;
   * whiteouts as char devices 0:0), or undefined when there is no such layer. Read-only.
   */
  layerDir(chainId: string): Promise<string | undefined>;
  /**
   * Unpacks an uncompressed layer tar (OCI whiteouts become overlayfs whiteouts) as the layer
   * `chainId` on top of `parentChainId`. Idempotent: returns at once when the layer exists.
   * Rejects hostile tars (paths escaping the layer) with a SnapshotError; nothing is left behind.
   * The stream is read to its end, or destroyed when not needed (layer exists, error).
   */
  applyLayer(
    chainId: string,
    parentChainId: string | undefined,
    tar: Readable,
    opts?: ApplyLayerOptions,
  ): Promise<LayerInfo>;
  /**
   * Unpacks a layer tar as applyLayer does, into a dir of its own that nobody sees until commit():
   * layers of one image can unpack in parallel and be committed in order. A crash leaves only a
   * temp dir, removed by init(). The stream is read to its end, or destroyed on error. Instead of a
   * stream, `source` may be a function that fills the (empty) dir itself, e.g. in a worker thread.
   */
  stageLayer(
    chainId: string,
    source: Readable | LayerApplier,
    opts?: ApplyLayerOptions,
  ): Promise<StagedLayer>;
  /** Removes a layer; refuses (FAILED_PRECONDITION) while a snapshot is stacked on it. */
  removeLayer(chainId: string): Promise<void>;
  listLayers(): Promise<string[]>;
  /** Layers that a container snapshot stands on. */
  layersInUse(): Promise<Set<string>>;
  /**
   * Creates a writable snapshot on `parents` (lowest first) and returns its mount. With
   * `opts.idmap` it stands on copies of the layers whose owners are shifted into that mapping
   * (made once per layer and mapping, freed with the last snapshot on them).
   */
  prepare(key: string, parents: string[], opts?: PrepareOptions): Promise<MountSpec>;
  /** The mount of an existing snapshot. */
  mounts(key: string): Promise<MountSpec>;
  info(key: string): Promise<SnapshotInfo | undefined>;
  list(): Promise<SnapshotInfo[]>;
  /** Removes a snapshot (idempotent). Its layers stay. */
  remove(key: string): Promise<void>;
  /** Disk use of a snapshot's writable layer, walked now (background work and tests only). */
  usage(key: string): Promise<Usage>;
  /**
   * Disk use of a snapshot's writable layer as the background walker last measured it (at most one
   * refresh interval old); undefined for an unknown snapshot. Never touches the disk.
   */
  cachedUsage(key: string): Usage | undefined;
  /**
   * Disk use of everything under the snapshotter's root, and that root's path, from memory: layers
   * as measured when unpacked, container snapshots as the background walker last measured them.
   */
  fsUsage(): Promise<Usage & { mountpoint: string }>;
  /** Starts the background walker that keeps snapshot usage fresh (every `intervalMs`). */
  startUsageRefresh(intervalMs: number): void;
  stopUsageRefresh(): Promise<void>;
  /** Measures every snapshot (or the given ones) now through the walker; resolves when done. */
  refreshUsage(keys?: string[]): Promise<void>;
}
