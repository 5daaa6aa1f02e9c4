// The pod checkpoint format (CheckpointPod writes it, RestorePod reads it) and the restore plan.
// Pure: no file or process here; ./pod-checkpoint-io.ts reads and writes the directory.
//
// A pod checkpoint is the directory the caller gave (CheckpointPodRequest.output_path) holding:
//   manifest.json               what is in it: format, version, who wrote it, the pod and its
//                               containers in checkpoint order, each with its files
//   pod-config.json             the pod's PodSandboxConfig as it ran
//   containers/<n>/config.json  container n's ContainerConfig as it ran (n = 0, 1, ...: names
//                               are the caller's and are not used as paths)
//   containers/<n>/checkpoint.tar  container n's checkpoint archive, the one CheckpointContainer
//                               writes (CRIU images, spec.dump, config.dump, rootfs-diff.tar)
// The restore plan turns a manifest plus a RestorePodRequest into the CRI steps that recreate the
// pod: RunPodSandbox with the request's sandbox config, then each container, in checkpoint order,
// created from its checkpoint with the request's (restore-time) config.
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';
import { invalidArgument, short } from '../errors';

export const POD_CHECKPOINT_FORMAT = 'berth.pod-checkpoint';
export const POD_CHECKPOINT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const POD_CONFIG_FILE = 'pod-config.json';

export const containerConfigFile = (n: number): string => `containers/${n}/config.json`;
export const containerArchiveFile = (n: number): string => `containers/${n}/checkpoint.tar`;

export interface PodCheckpointContainer {
  /** ContainerConfig.metadata.name: what RestorePod matches container_configs by */
  name: string;
  /** the checkpointed container's id (informational) */
  id: string;
  /** the image as the container's config named it, and the image id it ran */
  image: string;
  imageId: string;
  /** relative paths inside the checkpoint directory */
  config: string;
  archive: string;
}

export interface PodCheckpointManifest {
  format: typeof POD_CHECKPOINT_FORMAT;
  version: number;
  /** Berth's version and the CRI it spoke */
  berth: string;
  criApi: string;
  /** ISO time of the checkpoint */
  createdAt: string;
  pod: {
    id: string;
    name: string;
    namespace: string;
    uid: string;
    runtimeHandler: string;
    config: string;
  };
  containers: PodCheckpointContainer[];
}

export interface ManifestInput {
  berth: string;
  criApi: string;
  now: Date;
  pod: { id: string; config: PodSandboxConfig__Output; runtimeHandler: string };
  containers: { id: string; config: ContainerConfig__Output; imageId: string }[];
}

/** The manifest of a new checkpoint: containers numbered in the order given. */
export function buildManifest(i: ManifestInput): PodCheckpointManifest {
  const m = i.pod.config.metadata;
  return {
    format: POD_CHECKPOINT_FORMAT,
    version: POD_CHECKPOINT_VERSION,
    berth: i.berth,
    criApi: i.criApi,
    createdAt: i.now.toISOString(),
    pod: {
      id: i.pod.id,
      name: m?.name ?? '',
      namespace: m?.namespace ?? '',
      uid: m?.uid ?? '',
      runtimeHandler: i.pod.runtimeHandler,
      config: POD_CONFIG_FILE,
    },
    containers: i.containers.map((c, n) => ({
      name: c.config.metadata?.name ?? '',
      id: c.id,
      image: c.config.image?.image ?? '',
      imageId: c.imageId,
      config: containerConfigFile(n),
      archive: containerArchiveFile(n),
    })),
  };
}

/** Every file of a checkpoint, relative to its directory, manifest last (written last). */
export function checkpointFiles(m: PodCheckpointManifest): string[] {
  return [m.pod.config, ...m.containers.flatMap((c) => [c.config, c.archive]), MANIFEST_FILE];
}

const bad = (what: string): Error => invalidArgument(`checkpoint manifest: ${what}`);
const str = (v: unknown): v is string => typeof v === 'string';

/**
 * Reads a manifest's JSON text. INVALID_ARGUMENT saying what is wrong when it is not a Berth pod
 * checkpoint this version can restore, or when a file path is not the one the format fixes (so no
 * path from the archive can point outside it).
 */
export function parseManifest(text: string): PodCheckpointManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  const m = raw as Partial<PodCheckpointManifest> | null;
  if (typeof m !== 'object' || m === null) throw bad('not an object');
  if (m.format !== POD_CHECKPOINT_FORMAT)
    throw bad(`format ${short(m.format)} is not ${POD_CHECKPOINT_FORMAT} (not a Berth pod checkpoint)`);
  if (m.version !== POD_CHECKPOINT_VERSION)
    throw bad(
      `version ${short(m.version)} cannot be restored by this Berth (it reads version ${POD_CHECKPOINT_VERSION})`,
    );
  const p = m.pod;
  if (typeof p !== 'object' || p === null || ![p.id, p.name, p.namespace, p.uid, p.runtimeHandler].every(str))
    throw bad('pod: id, name, namespace, uid and runtimeHandler must be strings');
  if (p.config !== POD_CONFIG_FILE) throw bad(`pod.config ${short(p.config)} is not ${POD_CONFIG_FILE}`);
  if (!Array.isArray(m.containers) || m.containers.length === 0) throw bad('containers: none');
  const names = new Set<string>();
  m.containers.forEach((c: Partial<PodCheckpointContainer>, n) => {
    const at = `containers[${n}]`;
    if (typeof c !== 'object' || c === null || ![c.name, c.id, c.image, c.imageId].every(str))
      throw bad(`${at}: name, id, image and imageId must be strings`);
    if (!c.name) throw bad(`${at}: empty name`);
    if (names.has(c.name)) throw bad(`${at}: name ${short(c.name)} appears twice`);
    names.add(c.name);
    if (c.config !== containerConfigFile(n))
      throw bad(`${at}.config ${short(c.config)} is not ${containerConfigFile(n)}`);
    if (c.archive !== containerArchiveFile(n))
      throw bad(`${at}.archive ${short(c.archive)} is not ${containerArchiveFile(n)}`);
  });
  if (!str(m.berth) || !str(m.criApi) || !str(m.createdAt))
    throw bad('berth, criApi and createdAt must be strings');
  return m as PodCheckpointManifest;
}

/** What RestorePod asks for (the request's fields, the handler already resolved: '' is the default). */
export interface RestoreRequest {
  config: PodSandboxConfig__Output | null | undefined;
  runtimeHandler: string;
  options: Record<string, string>;
  containerConfigs: ContainerConfig__Output[];
}

export interface RestoreStep {
  name: string;
  /** the restore-time config: RestorePodRequest.container_configs' entry of this name */
  config: ContainerConfig__Output;
  /** relative path of its checkpoint archive */
  archive: string;
  /** the container id it was checkpointed from */
  checkpointedId: string;
}

export interface RestorePlan {
  /** RunPodSandbox with the request's config on this handler */
  sandbox: { config: PodSandboxConfig__Output; runtimeHandler: string };
  /** then each container, created from its checkpoint (CREATED, not started), in this order */
  containers: RestoreStep[];
}

/**
 * Checks a RestorePod request against the checkpoint and orders the work. INVALID_ARGUMENT naming
 * the field when the request cannot restore this checkpoint: no sandbox config, options (Berth
 * defines none), another handler than the checkpoint's, container names that are not exactly the
 * checkpoint's, or an image, command, args or working dir that differ from the checkpointed
 * container's (the checkpoint owns the process; these must describe it).
 */
export function planRestore(
  m: PodCheckpointManifest,
  checkpointed: ContainerConfig__Output[],
  req: RestoreRequest,
): RestorePlan {
  if (!req.config) throw invalidArgument('config: the pod sandbox config is required');
  const keys = Object.keys(req.options);
  if (keys.length) throw invalidArgument(`options: Berth defines no restore option (got ${short(keys[0])})`);
  if (req.runtimeHandler !== m.pod.runtimeHandler)
    throw invalidArgument(
      `runtime_handler ${short(req.runtimeHandler || '(default)')} is not the checkpoint's ${short(m.pod.runtimeHandler || '(default)')}`,
    );
  if (req.containerConfigs.length === 0) throw invalidArgument('container_configs: the list is empty');
  const byName = new Map<string, ContainerConfig__Output>();
  req.containerConfigs.forEach((c, i) => {
    const name = c.metadata?.name ?? '';
    if (!name) throw invalidArgument(`container_configs[${i}].metadata.name is empty`);
    if (byName.has(name)) throw invalidArgument(`container_configs[${i}]: name ${short(name)} appears twice`);
    byName.set(name, c);
  });
  const inCheckpoint = new Set(m.containers.map((c) => c.name));
  for (const name of byName.keys())
    if (!inCheckpoint.has(name))
      throw invalidArgument(`container_configs: ${short(name)} is not a container of the checkpoint`);
  const containers = m.containers.map((c, n): RestoreStep => {
    const config = byName.get(c.name);
    if (!config)
      throw invalidArgument(`container_configs: no config for checkpointed container ${short(c.name)}`);
    const before = checkpointed[n];
    if (before) checkSameProcess(c.name, before, config);
    return { name: c.name, config, archive: c.archive, checkpointedId: c.id };
  });
  return { sandbox: { config: req.config, runtimeHandler: req.runtimeHandler }, containers };
}

/** The fields that describe the checkpointed process must match it where the request sets them. */
function checkSameProcess(name: string, before: ContainerConfig__Output, now: ContainerConfig__Output): void {
  const at = `container_configs[${short(name)}]`;
  const img = now.image?.image ?? '';
  if (img && img !== (before.image?.image ?? ''))
    throw invalidArgument(`${at}.image ${short(img)} is not the checkpointed ${short(before.image?.image)}`);
  const same = (a: string[] | undefined, b: string[] | undefined): boolean =>
    JSON.stringify(a ?? []) === JSON.stringify(b ?? []);
  if (now.command?.length && !same(now.command, before.command))
    throw invalidArgument(`${at}.command differs from the checkpointed container's`);
  if (now.args?.length && !same(now.args, before.args))
    throw invalidArgument(`${at}.args differ from the checkpointed container's`);
  if (now.working_dir && now.working_dir !== (before.working_dir ?? ''))
    throw invalidArgument(
      `${at}.working_dir ${short(now.working_dir)} is not the checkpointed ${short(before.working_dir)}`,
    );
}

/**
 * Checks a CheckpointPod request's container list against the pod and returns the full ids in
 * request order. `lookup` resolves an id or prefix (and throws NOT_FOUND for an unknown one).
 * INVALID_ARGUMENT for an empty list, a duplicate or a container of another pod.
 */
export function checkCheckpointSelection(
  podId: string,
  requested: string[],
  lookup: (id: string) => { id: string; podId: string },
): string[] {
  if (requested.length === 0) throw invalidArgument('container_ids: the list is empty');
  const ids: string[] = [];
  requested.forEach((raw, i) => {
    const rec = lookup(raw);
    if (rec.podId !== podId)
      throw invalidArgument(`container_ids[${i}]: container ${short(rec.id)} is not in pod ${short(podId)}`);
    if (ids.includes(rec.id))
      throw invalidArgument(`container_ids[${i}]: container ${short(rec.id)} appears twice`);
    ids.push(rec.id);
  });
  return ids;
}
