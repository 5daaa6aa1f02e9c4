// The image store's contract: what the CRI ImageService handlers and the container code see.
import type { Readable } from 'node:stream';
import type { PullSnapshot } from './progress';

/** The parts of an OCI image config Berth uses; the whole JSON is kept in `ImageRecord.config`. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown> | null;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: unknown[];
  created?: string;
}

export interface LayerRecord {
  /** digest of the blob as served (compressed or not) */
  digest: string;
  mediaType: string;
  size: number;
  /** digest of the uncompressed tar */
  diffId: string;
  /** chain ID of this layer and those below */
  chainId: string;
  /**
   * The blob the content store holds for this layer when it is not `digest`: the layer was already
   * unpacked from another image's blob with the same diff_id, so that blob is kept for this image.
   */
  storedDigest?: string;
}

export interface ImageRecord {
  /** `sha256:<hex>` of the config blob */
  id: string;
  /** normalised `name:tag` references, e.g. docker.io/library/busybox:latest */
  repoTags: string[];
  /** `name@sha256:<manifest digest>` references */
  repoDigests: string[];
  /** bytes of the image's content (config + layer blobs as served) */
  size: number;
  /** digest of the manifest or index the reference resolved to (what repoDigests name) */
  manifestDigest: string;
  manifestMediaType: string;
  /** when manifestDigest is an index: the platform manifest chosen from it */
  platformManifestDigest?: string;
  /** os/arch[/variant] of the image */
  platform?: string;
  layers: LayerRecord[];
  config: ImageConfig;
  /** ms since the epoch when first pulled */
  pulledAt: number;
}

export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** base64 user:pass */
  auth?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface PullOptions {
  credentials?: RegistryCredentials;
  /** aborts the pull */
  signal?: AbortSignal;
}

export interface ImageFilter {
  /** a reference or id; only matching images */
  image?: string;
}

export interface ImageStore {
  /** Loads records from disk, cleans temp files and half-done pulls. */
  init(): Promise<void>;
  /** Pulls (or finds up to date) an image and returns its record. Concurrent pulls of one reference share one download. */
  pull(reference: string, opts?: PullOptions): Promise<ImageRecord>;
  /** Looks up by id (full or unique prefix of at least 12 hex chars), name:tag, name@digest, or short name. */
  get(refOrId: string): ImageRecord | undefined;
  list(filter?: ImageFilter): ImageRecord[];
  /**
   * Removes the image a tag, id or digest names, with all its tags (cri-api's RemoveImage: one tag
   * removes every tag of the image). Frees layers nobody else uses. Missing image: no error.
   */
  remove(refOrId: string): Promise<void>;
  /** Chain IDs of an image's layers, lowest first: what a container snapshot stacks on. */
  chainIds(image: ImageRecord): string[];
  /** Bytes and inodes used by image content and layers, and the mountpoint they live on. */
  fsUsage(): Promise<{ mountpoint: string; bytes: number; inodes: number }>;
  /** Reads a file from the image's unpacked layers (top layer wins), e.g. /etc/passwd. */
  readFile(image: ImageRecord, path: string): Promise<Buffer | undefined>;
  /** Marks images as pinned (never garbage collected; CRI `pinned`). */
  isPinned(image: ImageRecord): boolean;
  /** Where each running pull is (layers and bytes of those planned), for progress displays. */
  activePulls?(): PullSnapshot[];
}

export type { Readable };
export type { PullSnapshot };
