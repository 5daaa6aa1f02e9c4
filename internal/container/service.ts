// The container state machine: create, start, stop, remove, exec-sync, log reopen, recover.
// A container is a writable overlay snapshot on its image's layers, an OCI bundle built by the
// pure spec builder, and a runc container watched by conmon (so it outlives berthd).
//
// The record is written (state "creating") before the first side effect of CreateContainer; a
// failure undoes every step, and a crash midway is rolled back by recover().
import { randomBytes } from 'node:crypto';
import { crashPoint } from '../util/crashpoint';
import { Phases } from '../util/phases';
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type {
  ContainerConfig__Output,
  LinuxContainerResources__Output,
  PodSandboxConfig__Output,
} from '../../api/generated';
import {
  alreadyExists,
  deadlineExceeded,
  errMessage,
  failedPrecondition,
  invalidArgument,
  isBerthError,
  notFound,
  short,
  Status,
} from '../errors';
import { BackgroundQueue } from '../util/background-queue';
import { KeyedMutex } from '../util/keyed-mutex';
import { RecordStore } from '../util/record-store';
import { buildContainerSpec } from '../oci/spec';
import { readBundleSpec, writeBundle } from '../oci/bundle';
import type { OciSpec } from '../oci/spec-types';
import { cgroupsPathFor } from '../oci/resources';
import { resolveUser, userRequestFrom } from '../oci/user';
import { resolveMountSources, statRequestedDevices } from '../oci/host';
import { effectiveStopSignal } from '../oci/signal';
import { seccompRequestOf } from '../oci/seccomp';
import { loadLocalhostSeccomp } from '../oci/seccomp-file';
import type { ExitInfo, OciRuntime } from '../runtime';
import type { CreateOptions } from '../runtime/types';
import { featuresFor, runtimeFor, type CoreDeps } from '../sandbox/deps';
import type { SandboxService } from '../sandbox/service';
import type { SandboxRecord } from '../sandbox/types';
import { mountRootfs, releaseRootfs } from './rootfs';
import {
  checkMountsInsideVolumes,
  imageMounts,
  mountImageVolume,
  releaseImageVolumes,
  remountImageVolume,
  snapshotOwner,
  volumeDir,
  volumeKey,
  type ImageVolume,
} from './image-volumes';
import { readProcessUser } from './process-user';
import { recordResources, requestedResources, updateBundleResources, updateRefusal } from './update';
import { CHECKPOINT_IMAGES, writeCheckpointArchive } from './checkpoint';
import { buildManifest, containerArchiveFile } from './pod-checkpoint';
import { writePodCheckpointFiles } from './pod-checkpoint-io';
import { RUNC_RESTORE_OPTIONS, restoreDirOf, unpackContainerCheckpoint } from './restore-archive';
import { runPodCheckpoint } from './pod-checkpoint-run';
import { CRI_API_VERSION } from '../../api/cri-version';
import { withPodNamespaces } from './defaults';
import { checkContainerIdMap } from '../sandbox/userns';
import { dateToNs, isContainerRecord, nowNs, type ContainerRecord, type ContainerState } from './types';
import { metrics } from '../metrics/metrics';

/**
 * How long StopPodSandbox lets a container that is still running handle its stop signal before
 * SIGKILL. kubelet stops each container with the pod's grace period before it stops the sandbox, so
 * this only matters for a container kubelet did not stop (or a direct StopPodSandbox): short, but
 * long enough for a trap to run.
 */
export const POD_STOP_GRACE_SECONDS = 2;

export type ContainerEventType =
  | 'CONTAINER_CREATED_EVENT'
  | 'CONTAINER_STARTED_EVENT'
  | 'CONTAINER_STOPPED_EVENT'
  | 'CONTAINER_DELETED_EVENT';

export interface ContainerEvent {
  type: ContainerEventType;
  containerId: string;
  podId: string;
  /** nanoseconds */
  createdAt: string;
  /** the pod's record when it is already removed (the sandbox's own DELETED event) */
  pod?: SandboxRecord;
}

export interface ContainerFilter {
  id?: string;
  podId?: string;
  state?: 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
  labels?: Record<string, string>;
}

/** Seconds an ExecSync may run when the request sets no timeout. */
const EXEC_SYNC_NO_TIMEOUT = 0;
/** Container removals cleaned up at once in the background. */
const REMOVAL_CONCURRENCY = 2;
/** Past this many removals waiting for cleanup, RemoveContainer waits for its own (backpressure). */
const REMOVAL_BACKLOG = 32;

export class ContainerService {
  private readonly records = new Map<string, ContainerRecord>();
  /** cleanup of removed containers (runtime state, rootfs, record), after RemoveContainer answered */
  private readonly removals = new BackgroundQueue(REMOVAL_CONCURRENCY);
  private readonly names = new Map<string, string>();
  private readonly locks = new KeyedMutex();
  private readonly store: RecordStore<ContainerRecord>;
  private readonly watchers = new Map<string, AbortController>();
  /**
   * Each container's OCI spec as in its bundle's config.json, kept from create (or read once at
   * recover) so verbose ContainerStatus and stats never read or parse the bundle per call.
   */
  private readonly specs = new Map<string, OciSpec>();
  /** emits 'event' with a ContainerEvent (GetContainerEvents) */
  readonly events = new EventEmitter();
  private readonly log;

  constructor(
    private readonly deps: CoreDeps,
    private readonly sandboxes: SandboxService,
  ) {
    this.log = deps.log.child({ component: 'container' });
    this.store = new RecordStore(
      path.join(deps.config.root, 'containers'),
      this.log,
      isContainerRecord,
      (rec) => ({ ...rec, state: 'removing' }),
    );
    this.events.setMaxListeners(0);
    sandboxes.setContainers({
      idsInPod: (podId) => [...this.records.values()].filter((r) => r.podId === podId).map((r) => r.id),
      // StopPodSandbox: each container gets its stop signal and POD_STOP_GRACE_SECONDS, then SIGKILL
      stopForPod: (id) => this.stop(id, POD_STOP_GRACE_SECONDS),
      removeForPod: (id) => this.remove(id),
      settled: (podId) => this.removals.settled(podId),
    });
  }

  private bundleOf(id: string): string {
    return path.join(this.deps.config.state, 'bundles', id);
  }

  private runtimeOf(rec: { runtimeHandler: string }): OciRuntime {
    const r = this.deps.runtimes.get(rec.runtimeHandler);
    if (!r) throw failedPrecondition(`runtime handler ${short(rec.runtimeHandler)} is no longer configured`);
    return r;
  }

  private emit(type: ContainerEventType, rec: ContainerRecord): void {
    this.events.emit('event', {
      type,
      containerId: rec.id,
      podId: rec.podId,
      createdAt: nowNs(),
    } satisfies ContainerEvent);
  }

  get(id: string): ContainerRecord | undefined {
    return this.records.get(id);
  }

  /** The container's OCI spec (from memory); undefined when its bundle is gone (e.g. a reboot). */
  spec(id: string): OciSpec | undefined {
    return this.specs.get(id);
  }

  resolve(idOrPrefix: string): ContainerRecord {
    const exact = this.records.get(idOrPrefix);
    if (exact && exact.state !== 'creating') return exact;
    const matches = [...this.records.values()].filter(
      (r) => r.state !== 'creating' && r.id.startsWith(idOrPrefix),
    );
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw failedPrecondition(`container id prefix ${short(idOrPrefix)} is ambiguous`);
    throw notFound(`container ${short(idOrPrefix)} not found`);
  }

  list(filter: ContainerFilter = {}): ContainerRecord[] {
    return [...this.records.values()].filter((r) => {
      if (r.state === 'creating') return false;
      if (filter.id && !r.id.startsWith(filter.id)) return false;
      if (filter.podId && !r.podId.startsWith(filter.podId)) return false;
      if (filter.state && criState(r.state) !== filter.state) return false;
      for (const [k, v] of Object.entries(filter.labels ?? {})) if (r.config.labels[k] !== v) return false;
      return true;
    });
  }

  private async persist(rec: ContainerRecord, opts?: { durable?: boolean }): Promise<void> {
    await this.store.put(rec.id, rec, opts);
    this.records.set(rec.id, rec);
  }

  /**
   * CreateContainer. With `restoreFrom` (RestorePod: a container's checkpoint archive), the
   * archive is unpacked into the bundle, its rootfs diff applied onto the new snapshot before it is
   * mounted, and no runc container is made: the record is CREATED with the CRIU images, and
   * StartContainer restores the process from them.
   */
  async create(
    podId: string,
    config: ContainerConfig__Output,
    sandboxConfig: PodSandboxConfig__Output | null | undefined,
    restoreFrom?: string,
  ): Promise<string> {
    const ph = new Phases('CreateContainer', this.deps.phases, this.log);
    const pod = this.sandboxes.resolve(podId);
    const namespaces = this.sandboxes.namespacePaths(pod);
    const podConfig = pod.config;
    const meta = config.metadata!;
    const key = `${meta.name}_${podConfig.metadata!.name}_${podConfig.metadata!.namespace}_${podConfig.metadata!.uid}_${meta.attempt}`;
    const taken = this.names.get(key);
    if (taken) throw alreadyExists(`container name ${short(key)} is reserved for ${taken}`);
    const image = this.deps.images.get(config.image!.image);
    if (!image) throw notFound(`image ${short(config.image!.image)} is not present: pull it first`);
    void sandboxConfig; // the stored pod config is authoritative; kubelet sends the same one
    // every image a volume names must be here already (kubelet pulls it): checked before any work
    const volumeImages = imageMounts(config.mounts).map(({ index, mount }) => {
      const ref = mount.image!.image;
      const img = this.deps.images.get(ref);
      if (!img)
        throw notFound(
          `mount ${short(mount.container_path)}: image ${short(ref)} of the image volume is not present: pull it first`,
        );
      return { index, ref, img };
    });
    const idmap = this.sandboxes.idMap(pod);
    checkContainerIdMap(idmap, withPodNamespaces(config, podConfig));
    // the container's own profile (kubelet puts the pod's there when the container sets none; the
    // pod's security context applies to the infra container only, as the CRI says); loaded and
    // checked before anything is created
    const sc = config.linux?.security_context;
    const seccompProfile = await loadLocalhostSeccomp(seccompRequestOf(sc), sc?.privileged ?? false);
    const id = randomBytes(32).toString('hex');
    this.names.set(key, id);
    const logPath =
      podConfig.log_directory && config.log_path ? path.join(podConfig.log_directory, config.log_path) : '';
    const rec: ContainerRecord = {
      version: 1,
      id,
      podId: pod.id,
      state: 'creating',
      config,
      imageId: image.id,
      imageRef: image.repoDigests[0] ?? image.id,
      runtimeHandler: pod.runtimeHandler,
      bundle: this.bundleOf(id),
      logPath,
      stopSignal: effectiveStopSignal(config.stop_signal, image.config).name,
      user: { uid: 0, gid: 0, additionalGids: [] },
      createdAt: nowNs(),
      startedAt: '0',
      finishedAt: '0',
      pid: 0,
      exitCode: 0,
      reason: '',
      message: '',
      resources: config.linux?.resources ?? null,
      ...(volumeImages.length
        ? {
            imageVolumes: volumeImages.map(
              (v): ImageVolume => ({
                index: v.index,
                image: v.ref,
                imageId: v.img.id,
                key: volumeKey(id, v.index),
                viewDir: volumeDir(this.bundleOf(id), v.index),
              }),
            ),
          }
        : {}),
    };
    const started = Date.now();
    ph.mark('validate');
    try {
      await this.locks.run(id, async () => {
        ph.mark('lock');
        // rolled back after a crash; no fsync needed for that (RecordStore.put), the next is durable
        await this.persist(rec, { durable: false });
        ph.mark('record');
        const user = resolveUser(userRequestFrom(sc, image.config.config?.User), {
          passwd: await this.deps.images.readFile(image, '/etc/passwd'),
          group: await this.deps.images.readFile(image, '/etc/group'),
        });
        rec.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
        const mountSources = await resolveMountSources(config.mounts.filter((m) => !m.image?.image));
        for (const [hostPath, src] of Object.entries(mountSources))
          if (src === null) throw invalidArgument(`mount host_path ${short(hostPath)} does not exist`);
        ph.mark('user+mounts');
        let restoreImages: string | undefined;
        const rootfs = await mountRootfs(
          this.deps.snapshotter,
          id,
          this.deps.images.chainIds(image),
          rec.bundle,
          idmap,
          restoreFrom === undefined
            ? undefined
            : async (upper) => {
                restoreImages = await unpackContainerCheckpoint(restoreFrom, restoreDirOf(rec.bundle), upper);
              },
        );
        ph.mark('rootfs');
        const imageSources: Record<number, string> = {};
        for (const v of volumeImages) {
          const vol = rec.imageVolumes!.find((x) => x.index === v.index)!;
          const mount = config.mounts[v.index]!;
          imageSources[v.index] = await mountImageVolume(
            this.deps.snapshotter,
            vol,
            this.deps.images.chainIds(v.img),
            mount.image_sub_path,
            `mount ${short(mount.container_path)}`,
            idmap,
          );
        }
        if (volumeImages.length) {
          await checkMountsInsideVolumes(config.mounts, imageSources);
          ph.mark('image-volumes');
          crashPoint('container-create:image-volumes-mounted');
        }
        const target = this.targetPidNamespace(withPodNamespaces(config, podConfig), pod);
        const spec = buildContainerSpec({
          id,
          sandboxId: pod.id,
          config: withPodNamespaces(config, podConfig),
          sandboxConfig: podConfig,
          image: image.config,
          imageName: config.image!.image,
          rootfs,
          user,
          namespaces,
          targetPidNamespace: target,
          podFiles: {
            hostname: path.join(pod.podDir, 'hostname'),
            hosts: path.join(pod.podDir, 'hosts'),
            resolvConf: path.join(pod.podDir, 'resolv.conf'),
            shm:
              podConfig.linux?.security_context?.namespace_options?.ipc === 'NODE'
                ? '/dev/shm'
                : path.join(pod.podDir, 'shm'),
          },
          hostname: podConfig.hostname,
          cgroupsPath: cgroupsPathFor(
            this.deps.config.runtime.cgroup_driver,
            podConfig.linux?.cgroup_parent,
            id,
          ),
          mountSources,
          imageSources,
          devices: await statRequestedDevices(config.devices),
          seccompProfile,
          host: this.deps.host,
          features: featuresFor(this.deps, rec.runtimeHandler),
        });
        crashPoint('container-create:rootfs-mounted');
        await writeBundle(rec.bundle, spec);
        this.specs.set(id, spec);
        if (idmap) await this.sandboxes.openForPodRoot(rec.bundle, pod.podDir);
        crashPoint('container-create:bundle-written');
        if (logPath) await fsp.mkdir(path.dirname(logPath), { recursive: true });
        ph.mark('bundle');
        if (restoreImages !== undefined) {
          // RestorePod: CREATED without a process; StartContainer restores it
          rec.restore = { imagePath: restoreImages };
          rec.state = 'created';
          await this.persist(rec);
          this.emit('CONTAINER_CREATED_EVENT', rec);
          return;
        }
        const created = await this.runtimeOf(rec).create({
          id,
          bundle: rec.bundle,
          logPath: logPath || path.join(rec.bundle, 'container.log'),
          tty: config.tty,
          stdin: config.stdin,
          stdinOnce: config.stdin_once,
          cgroupsPath: spec.linux?.cgroupsPath ?? '',
        });
        ph.mark('runtime-create');
        crashPoint('container-create:runtime-created');
        rec.pid = created.pid;
        rec.user = await this.processUser(created.pid, rec.user);
        rec.state = 'created';
        await this.persist(rec);
        ph.mark('record');
        this.emit('CONTAINER_CREATED_EVENT', rec);
      });
    } catch (err) {
      this.log.warn('CreateContainer failed; rolling back', { id, error: errMessage(err) });
      await this.teardown(rec);
      throw err;
    }
    this.log.info('container created', { id, pod: pod.id, name: meta.name, ms: Date.now() - started });
    ph.end(id);
    return id;
  }

  /**
   * What the created process really got (ContainerStatus.user); the resolved user only when /proc
   * cannot tell (logged: it should not happen while runc init waits to exec).
   */
  private async processUser(
    pid: number,
    resolved: ContainerRecord['user'],
  ): Promise<ContainerRecord['user']> {
    try {
      return await readProcessUser(pid);
    } catch (err) {
      this.log.warn('cannot read the created process user; reporting the resolved one', {
        pid,
        error: errMessage(err),
      });
      return resolved;
    }
  }

  private targetPidNamespace(config: ContainerConfig__Output, pod: SandboxRecord): string | undefined {
    const ns = config.linux?.security_context?.namespace_options;
    if (ns?.pid !== 'TARGET') return undefined;
    const target = this.records.get(ns.target_id);
    if (!target || target.podId !== pod.id)
      throw notFound(
        `pid namespace target container ${short(ns.target_id)} not found in pod ${short(pod.id)}`,
      );
    if (target.state !== 'running' || target.pid <= 0)
      throw failedPrecondition(`pid namespace target container ${short(ns.target_id)} is not running`);
    return `/proc/${target.pid}/ns/pid`;
  }

  async start(idOrPrefix: string): Promise<void> {
    const rec = this.resolve(idOrPrefix);
    const ph = new Phases('StartContainer', this.deps.phases, this.log);
    await this.locks.run(rec.id, async () => {
      ph.mark('lock');
      if (rec.state !== 'created')
        throw failedPrecondition(
          `container ${short(rec.id)} is ${rec.state}, not created: it cannot be started`,
        );
      const runtime = this.runtimeOf(rec);
      try {
        if (rec.restore)
          rec.pid = (await runtime.create(this.restoreOptions(rec, rec.restore.imagePath))).pid;
        else await runtime.start(rec.id);
      } catch (err) {
        // a container that could not start is EXITED with the reason, as containerd reports it
        Object.assign(rec, {
          state: 'exited',
          finishedAt: nowNs(),
          exitCode: 128,
          reason: 'StartError',
          message: errMessage(err),
        });
        await this.persist(rec);
        this.emit('CONTAINER_STOPPED_EVENT', rec);
        throw err;
      }
      ph.mark('runtime-start');
      crashPoint('container-start:runtime-started');
      if (rec.restore) rec.user = await this.processUser(rec.pid, rec.user);
      delete rec.restore;
      rec.state = 'running';
      rec.startedAt = nowNs();
      await this.persist(rec);
      ph.mark('record');
      // emitted before the exit watcher exists, so STARTED always precedes STOPPED
      this.emit('CONTAINER_STARTED_EVENT', rec);
      this.watch(rec);
    });
    ph.end(rec.id);
  }

  /** conmon's options to restore a RestorePod container from its CRIU images (runc restore --detach). */
  private restoreOptions(rec: ContainerRecord, imagePath: string): CreateOptions {
    return {
      id: rec.id,
      bundle: rec.bundle,
      logPath: rec.logPath || path.join(rec.bundle, 'container.log'),
      tty: rec.config.tty,
      stdin: rec.config.stdin,
      stdinOnce: rec.config.stdin_once,
      cgroupsPath: this.specs.get(rec.id)?.linux?.cgroupsPath ?? '',
      restore: { imagePath, runtimeOpts: RUNC_RESTORE_OPTIONS },
    };
  }

  /** Records the exit of a running container when it happens, whoever caused it. */
  private watch(rec: ContainerRecord): void {
    this.watchers.get(rec.id)?.abort();
    const ac = new AbortController();
    this.watchers.set(rec.id, ac);
    this.runtimeOf(rec)
      .waitExit(rec.id, ac.signal)
      .then(
        (info) => this.locks.run(rec.id, () => this.markExited(rec, info)),
        () => undefined,
      );
  }

  private async markExited(rec: ContainerRecord, info: ExitInfo): Promise<void> {
    if (!this.records.has(rec.id) || rec.state === 'exited') return;
    rec.state = 'exited';
    rec.exitCode = info.exitCode;
    rec.finishedAt = dateToNs(info.finishedAt);
    rec.reason = info.oomKilled ? 'OOMKilled' : info.exitCode === 0 ? 'Completed' : 'Error';
    rec.message = info.unknown ? 'the container monitor exited without recording the exit code' : '';
    rec.pid = 0;
    await this.persist(rec);
    this.watchers.delete(rec.id);
    this.log.info('container exited', { id: rec.id, exitCode: info.exitCode, reason: rec.reason });
    this.emit('CONTAINER_STOPPED_EVENT', rec);
  }

  async stop(idOrPrefix: string, timeoutSec: number): Promise<void> {
    const rec = this.resolve(idOrPrefix);
    const ph = new Phases('StopContainer', this.deps.phases, this.log);
    await this.locks.run(rec.id, async () => {
      ph.mark('lock');
      if (rec.state === 'exited') return;
      if (rec.state === 'created' && rec.restore) {
        // a RestorePod container never started has no process and no runc container
        await this.markExited(rec, { exitCode: 137, finishedAt: new Date(), oomKilled: false });
        return;
      }
      const runtime = this.runtimeOf(rec);
      if (rec.state === 'created') {
        // never started: kill the waiting init process
        await runtime.kill(rec.id, 'SIGKILL').catch(() => undefined);
      }
      const info = await runtime.stop(
        rec.id,
        timeoutSec > 0 ? rec.stopSignal : 'SIGKILL',
        Math.max(0, timeoutSec),
      );
      ph.mark('runtime-stop');
      this.watchers.get(rec.id)?.abort();
      await this.markExited(rec, info);
      ph.mark('record');
    });
    ph.end(rec.id);
  }

  async remove(idOrPrefix: string): Promise<void> {
    let rec: ContainerRecord;
    try {
      rec = this.resolve(idOrPrefix);
    } catch (err) {
      // CRI: removing a container that is already gone is not an error
      if (isBerthError(err, Status.NOT_FOUND)) return;
      throw err;
    }
    const ph = new Phases('RemoveContainer', this.deps.phases, this.log);
    if (rec.state === 'running' || rec.state === 'created') await this.stop(rec.id, 0);
    ph.mark('stop');
    await this.locks.run(rec.id, async () => {
      ph.mark('lock');
      if (!this.records.has(rec.id)) return; // a concurrent remove won (and sent DELETED)
      // Gone for the API once the record durably says so; the slow part (runc delete, unmount,
      // removing the rootfs and bundle) runs in the background, and a restart finishes it.
      // a rename and one fsync (record-store.ts); load() then reads the record as 'removing'
      await this.store.markRemoving(rec.id, rec);
      ph.mark('record');
      this.forget(rec);
      this.emit('CONTAINER_DELETED_EVENT', rec);
      void this.removals.add(rec.id, rec.podId, async () => {
        crashPoint('container-remove:cleanup');
        const bg = new Phases('RemoveContainer (background)', this.deps.phases, this.log);
        await this.teardown(rec, bg);
        bg.end(rec.id);
      });
    });
    if (this.removals.size > REMOVAL_BACKLOG) await this.removals.wait(rec.id);
    ph.mark('backlog');
    ph.end(rec.id);
  }

  /** Resolves when every removed container has been cleaned up (tests, shutdown). */
  removalsSettled(): Promise<void> {
    return this.removals.drain();
  }

  /** Drops a container from the in-memory views (the API no longer knows it). */
  private forget(rec: ContainerRecord): void {
    this.watchers.get(rec.id)?.abort();
    this.watchers.delete(rec.id);
    this.records.delete(rec.id);
    this.specs.delete(rec.id);
    for (const [k, v] of this.names) if (v === rec.id) this.names.delete(k);
  }

  /** Removes every trace of a container (runtime state, rootfs, bundle, record); best effort. */
  private async teardown(rec: ContainerRecord, ph?: Phases): Promise<void> {
    this.forget(rec);
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.warn(`container teardown: ${what} failed`, { id: rec.id, error: errMessage(err) });
      }
    };
    const runtime = this.deps.runtimes.get(rec.runtimeHandler);
    if (runtime) await step('runtime delete', () => runtime.delete(rec.id, true));
    ph?.mark('runtime-delete');
    // before the rootfs: releasing it removes the bundle, which holds the volume mounts
    await step('image volumes', () => releaseImageVolumes(this.deps.snapshotter, rec.id, rec.bundle));
    await step('rootfs', () => releaseRootfs(this.deps.snapshotter, rec.id, rec.bundle));
    ph?.mark('rootfs');
    await this.store.delete(rec.id);
    ph?.mark('record');
  }

  /**
   * UpdateContainerResources: applies `r` to a created or running container (`runc update`), then
   * writes it into the bundle's spec and the record. A refusal (e.g. a memory limit below current
   * usage) re-applies the old limits and leaves spec and record as they were.
   */
  async updateResources(idOrPrefix: string, r: LinuxContainerResources__Output): Promise<void> {
    const rec = this.resolve(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      if (rec.state !== 'running' && rec.state !== 'created')
        throw failedPrecondition(
          `container ${short(rec.id)} is ${rec.state}: only created or running containers can be updated`,
        );
      const features = featuresFor(this.deps, rec.runtimeHandler);
      const next = requestedResources(r, features);
      const runtime = this.runtimeOf(rec);
      try {
        await runtime.update(rec.id, next);
      } catch (err) {
        // runc writes controller by controller: undo whatever went in before the refusal
        await runtime
          .update(rec.id, requestedResources(rec.resources, features))
          .catch((e: unknown) =>
            this.log.warn('restoring old limits failed', { id: rec.id, error: errMessage(e) }),
          );
        throw updateRefusal(err, rec.id, r);
      }
      await updateBundleResources(rec.bundle, next).then(
        (spec) => this.specs.set(rec.id, spec),
        (err: unknown) =>
          this.log.warn('writing updated resources into the bundle failed', {
            id: rec.id,
            error: errMessage(err),
          }),
      );
      rec.resources = recordResources(rec.resources, r);
      await this.persist(rec);
    });
  }

  /**
   * CheckpointContainer: CRIU dump of a running container (left running) plus its spec, record and
   * writable-layer changes, archived at `location`. FAILED_PRECONDITION when CRIU or the runtime
   * cannot checkpoint on this host, saying what is missing.
   */
  async checkpoint(idOrPrefix: string, location: string, timeoutSec: number): Promise<string[]> {
    const rec = this.resolve(idOrPrefix);
    if (!location || !path.isAbsolute(location))
      throw invalidArgument(`location ${short(location)} must be an absolute path`);
    const dir = path.dirname(location);
    const st = await fsp.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw invalidArgument(`location: directory ${short(dir)} does not exist`);
    return this.locks.run(rec.id, async () => {
      if (rec.state !== 'running')
        throw failedPrecondition(
          `container ${short(rec.id)} is ${rec.state}: only a running container can be checkpointed`,
        );
      return this.archiveCheckpoint(rec, location, timeoutSec > 0 ? timeoutSec * 1000 : undefined);
    });
  }

  /**
   * CRIU images of a running container in a work dir next to `location`, archived there with its
   * spec, record and writable-layer changes; the work dir is removed either way.
   */
  private async archiveCheckpoint(
    rec: ContainerRecord,
    location: string,
    timeoutMs?: number,
  ): Promise<string[]> {
    const work = await fsp.mkdtemp(path.join(path.dirname(location), '.berth-checkpoint-'));
    try {
      await this.runtimeOf(rec).checkpoint(rec.id, path.join(work, CHECKPOINT_IMAGES), work, timeoutMs);
      const snap = await this.deps.snapshotter.info(rec.id);
      return await writeCheckpointArchive({
        location,
        workDir: work,
        specFile: path.join(rec.bundle, 'config.json'),
        record: rec,
        upperDir: snap?.upperDir,
      });
    } finally {
      await fsp.rm(work, { recursive: true, force: true });
    }
  }

  /**
   * CheckpointPod's work, after the request was checked (see internal/server/pod_checkpoint.ts):
   * pauses every selected container, checkpoints each into `dir` (format: ./pod-checkpoint.ts),
   * and resumes every container it paused, on success and on error. On error, what it wrote in
   * `dir` (empty when it started) is removed. FAILED_PRECONDITION, before anything is paused, when
   * the runtime or CRIU cannot checkpoint here (quoting `criu check`) or a container is not running.
   */
  async checkpointPod(
    pod: SandboxRecord,
    ids: string[],
    dir: string,
    opts: { timeoutSec: number; berthVersion: string; signal?: AbortSignal },
  ): Promise<void> {
    const recs = ids.map((id) => this.resolve(id));
    return this.withLocks(ids, async () => {
      for (const rec of recs)
        if (rec.state !== 'running')
          throw failedPrecondition(
            `container ${short(rec.id)} is ${rec.state}: every selected container must be running`,
          );
      for (const rec of recs) {
        const problem = await this.runtimeOf(rec).checkpointProblem();
        if (problem) throw failedPrecondition(`cannot checkpoint pod ${short(pod.id)}: ${problem}`);
      }
      const timeoutMs = opts.timeoutSec > 0 ? opts.timeoutSec * 1000 : undefined;
      await runPodCheckpoint(
        recs,
        {
          name: (rec) => short(rec.id),
          pause: (rec) => this.runtimeOf(rec).pause(rec.id),
          resume: (rec) => this.runtimeOf(rec).resume(rec.id),
          capture: (rec, n) => this.checkpointInto(rec, dir, n, timeoutMs),
          finish: () =>
            writePodCheckpointFiles(
              dir,
              buildManifest({
                berth: opts.berthVersion,
                criApi: CRI_API_VERSION,
                now: new Date(),
                pod: { id: pod.id, config: pod.config, runtimeHandler: pod.runtimeHandler },
                containers: recs.map((r) => ({ id: r.id, config: r.config, imageId: r.imageId })),
              }),
              pod.config,
              recs.map((r) => r.config),
            ),
          clean: async () => {
            for (const e of await fsp.readdir(dir).catch(() => []))
              await fsp.rm(path.join(dir, e), { recursive: true, force: true });
          },
        },
        opts.signal,
      );
    });
  }

  /** One container of a pod checkpoint: CRIU images in a work dir, archived as container n's. */
  private async checkpointInto(
    rec: ContainerRecord,
    dir: string,
    n: number,
    timeoutMs?: number,
  ): Promise<void> {
    const location = path.join(dir, containerArchiveFile(n));
    await fsp.mkdir(path.dirname(location), { recursive: true });
    await this.archiveCheckpoint(rec, location, timeoutMs);
  }

  /**
   * RestorePod's handler: its configured name ('' is the default handler; INVALID_ARGUMENT for an
   * unknown one) and why it cannot restore CRIU images here, when it cannot.
   */
  async restoreHandler(handler: string): Promise<{ name: string; problem?: string }> {
    const { name, runtime } = runtimeFor(this.deps, handler);
    return { name, problem: await runtime.checkpointProblem() };
  }

  /** Runs `fn` holding the locks of several containers, taken in id order (no deadlock). */
  private withLocks<T>(ids: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(ids)].sort();
    const step = (i: number): Promise<T> =>
      i === sorted.length ? fn() : this.locks.run(sorted[i]!, () => step(i + 1));
    return step(0);
  }

  async execSync(
    idOrPrefix: string,
    cmd: string[],
    timeoutSec: number,
  ): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
    const rec = this.resolve(idOrPrefix);
    if (rec.state !== 'running')
      throw failedPrecondition(`container ${short(rec.id)} is not running (state ${rec.state})`);
    if (cmd.length === 0 || !cmd[0]) throw invalidArgument('cmd must not be empty');
    const spec = this.specs.get(rec.id);
    const res = await this.runtimeOf(rec).execSync(rec.id, cmd, {
      timeoutSec: timeoutSec > 0 ? timeoutSec : EXEC_SYNC_NO_TIMEOUT,
      container: spec && rec.pid > 0 ? { pid: rec.pid, spec } : undefined,
    });
    metrics.execSync(res.timedOut);
    if (res.timedOut)
      throw deadlineExceeded(
        `command ${short(cmd.join(' '))} timed out after ${timeoutSec}s (it was killed)`,
      );
    return { stdout: res.stdout, stderr: res.stderr, exitCode: res.exitCode };
  }

  async reopenLog(idOrPrefix: string): Promise<void> {
    const rec = this.resolve(idOrPrefix);
    if (rec.state !== 'running') throw failedPrecondition(`container ${short(rec.id)} is not running`);
    await this.runtimeOf(rec).reopenLog(rec.id, rec.logPath || undefined);
  }

  /** Loads records and brings them in line with what runc and conmon say happened meanwhile. */
  async recover(): Promise<void> {
    const loaded = await this.store.load();
    for (const rec of loaded.values()) if (rec.state !== 'removing') this.records.set(rec.id, rec);
    for (const rec of loaded.values()) {
      if (rec.state === 'removing') {
        this.log.info('finishing the removal of a container', { id: rec.id });
        await this.teardown(rec);
        continue;
      }
      const pod = this.sandboxes.get(rec.podId);
      if (rec.state === 'creating' || !pod) {
        this.log.info('removing a container whose creation was interrupted or whose pod is gone', {
          id: rec.id,
        });
        await this.teardown(rec);
        continue;
      }
      const m = rec.config.metadata!;
      const pm = pod.config.metadata!;
      this.names.set(`${m.name}_${pm.name}_${pm.namespace}_${pm.uid}_${m.attempt}`, rec.id);
      const spec = await readBundleSpec(rec.bundle).catch(() => undefined);
      if (spec) this.specs.set(rec.id, spec);
      if (rec.state !== 'exited' && spec) await this.keepImageVolumes(rec);
      if (rec.state === 'exited') continue;
      const runtime = this.deps.runtimes.get(rec.runtimeHandler);
      if (!runtime) continue;
      if (rec.state === 'created' && rec.restore) {
        // a RestorePod container not started has no runc container; one whose StartContainer
        // restored it before a crash kept it from being recorded is running now
        const st = await runtime.state(rec.id).catch(() => undefined);
        if (!st) continue;
        this.log.info('a restored container started before the crash is running', { id: rec.id });
        delete rec.restore;
        Object.assign(rec, { state: 'running', pid: st.pid, startedAt: nowNs() });
        await this.persist(rec);
      }
      const info = await runtime.exitInfo(rec.id).catch(() => undefined);
      if (info) {
        await this.markExited(rec, info);
        continue;
      }
      const st = await runtime.state(rec.id).catch(() => undefined);
      if (!st || st.status === 'stopped') {
        await this.markExited(rec, {
          exitCode: 255,
          finishedAt: new Date(),
          oomKilled: false,
          unknown: true,
        });
        continue;
      }
      if (rec.state === 'created' && st.status === 'running') {
        // StartContainer's runc start ran but a crash kept its record from being written: the
        // container is running (left CREATED, a kubelet's StartContainer would fail on it)
        this.log.info('a container started before the crash is running', { id: rec.id });
        Object.assign(rec, { state: 'running', pid: st.pid, startedAt: nowNs() });
        await this.persist(rec);
      }
      if (rec.state === 'running') this.watch(rec);
    }
  }

  /**
   * A live container's image volume views stay mounted across a restart (kernel mounts outlive
   * berthd); one found unmounted (its snapshot still there) is mounted again from the record.
   */
  private async keepImageVolumes(rec: ContainerRecord): Promise<void> {
    for (const vol of rec.imageVolumes ?? []) {
      try {
        if (await remountImageVolume(this.deps.snapshotter, vol))
          this.log.info('image volume view mounted again', {
            id: rec.id,
            image: vol.image,
            dir: vol.viewDir,
          });
      } catch (err) {
        this.log.warn('cannot mount an image volume view again', { id: rec.id, error: errMessage(err) });
      }
    }
  }

  /** Containers (not yet removed) whose rootfs or an image volume uses the image, sorted by id. */
  usersOfImage(imageId: string): { rootfs: string[]; volume: string[] } {
    const out = { rootfs: [] as string[], volume: [] as string[] };
    for (const r of this.records.values()) {
      if (r.state === 'creating') continue;
      if (r.imageId === imageId) out.rootfs.push(r.id);
      if (r.imageVolumes?.some((v) => v.imageId === imageId)) out.volume.push(r.id);
    }
    // in a stable order: the records' map order is load order after a restart
    out.rootfs.sort();
    out.volume.sort();
    return out;
  }

  /** Snapshots and bundles that belong to no pod or container (left by a crash) are removed. */
  async reconcile(): Promise<void> {
    const owned = new Set<string>([...this.records.keys(), ...this.sandboxes.list().map((s) => s.id)]);
    for (const snap of await this.deps.snapshotter.list()) {
      const owner = snapshotOwner(snap.key);
      if (owned.has(owner) || this.sandboxes.get(owner)) continue;
      // removed, and its background cleanup (which releases these) has not finished yet
      if (this.removals.has(owner) || this.sandboxes.removalPending(owner)) continue;
      const bundle = this.bundleOf(owner);
      await releaseImageVolumes(this.deps.snapshotter, owner, bundle)
        .then(() => (owner === snap.key ? releaseRootfs(this.deps.snapshotter, owner, bundle) : undefined))
        .catch((err: unknown) =>
          this.log.warn('removing a leftover snapshot failed', { key: snap.key, error: errMessage(err) }),
        );
    }
  }

  close(): void {
    for (const ac of this.watchers.values()) ac.abort();
    this.watchers.clear();
  }
}

export function criState(
  s: ContainerState,
): 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN' {
  switch (s) {
    case 'created':
      return 'CONTAINER_CREATED';
    case 'running':
      return 'CONTAINER_RUNNING';
    case 'exited':
      return 'CONTAINER_EXITED';
    default:
      return 'CONTAINER_UNKNOWN';
  }
}
