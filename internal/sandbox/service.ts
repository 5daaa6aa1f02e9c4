// The pod sandbox state machine: run, stop, remove, recover. A sandbox is a pinned network
// namespace with its CNI attachment, the pod files (hostname, hosts, resolv.conf, /dev/shm), and
// either an infra container from the pause image that holds the pod's IPC/UTS/PID namespaces, or,
// where no PID namespace is shared (runtime.drop_infra_ctr, as CRI-O does), IPC and UTS namespaces
// pinned as files (ipc-uts.ts) and no process at all.
//
// Every step of RunPodSandbox is undone if a later one fails; the record is written (state
// "creating") before the first side effect, so a crash midway is rolled back by recover().
// Teardown always finishes: a step that fails (CNI DEL, say) is logged and left to
// reconcile(), which retries it in the background and at start.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { crashPoint } from '../util/crashpoint';
import { Phases } from '../util/phases';
import * as path from 'node:path';
import type { LinuxContainerResources__Output, PodSandboxConfig__Output } from '../../api/generated';
import type { CreateResult } from '../runtime/types';
import { nextPodResources } from './resources';
import {
  alreadyExists,
  errMessage,
  failedPrecondition,
  isBerthError,
  notFound,
  short,
  Status,
} from '../errors';
import type { ImageRecord } from '../image/types';
import { KeyedMutex } from '../util/keyed-mutex';
import { RecordStore } from '../util/record-store';
import { BackgroundQueue } from '../util/background-queue';
import { buildSandboxSpec, type SandboxNamespacePaths } from '../oci/spec';
import { readBundleSpec, writeBundle } from '../oci/bundle';
import type { OciSpec } from '../oci/spec-types';
import { cgroupsPathFor } from '../oci/resources';
import { resolveUser, userRequestFrom } from '../oci/user';
import { seccompRequestOf } from '../oci/seccomp';
import { loadLocalhostSeccomp } from '../oci/seccomp-file';
import type { CapabilityArgs } from '../network/cni';
import { isNsPinned } from '../network/netns';
import { mountRootfs, releaseRootfs, rootfsOf } from '../container/rootfs';
import { nowNs } from '../container/types';
import type { ContainerEvent, ContainerEventType } from '../container/service';
import { createPodFiles, removePodFiles, writeHosts } from './podfiles';
import { makeTraversable, podIdMap, UsernsManager } from './userns';
import { IpcUtsPins } from './ipc-uts';
import type { IdMap } from '../snapshot/idmap';
import { featuresFor, runtimeFor, type CoreDeps } from './deps';
import {
  hostIpc,
  hostNetwork,
  isSandboxRecord,
  needsInfra,
  podReady,
  sandboxNameKey,
  type SandboxRecord,
  type SandboxState,
} from './types';

/** What the sandbox service needs from the container service (which in turn needs sandboxes). */
export interface PodContainers {
  idsInPod(podId: string): string[];
  /** stops a container of a stopping pod: its stop signal, a short grace (kubelet usually stopped it already), then SIGKILL */
  stopForPod(id: string): Promise<void>;
  removeForPod(id: string): Promise<void>;
  /** resolves once no removal of a container of this pod is still being cleaned up */
  settled(podId: string): Promise<void>;
}

export interface SandboxFilter {
  id?: string;
  state?: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  labels?: Record<string, string>;
}

/** Sandbox removals cleaned up at once in the background. */
const REMOVAL_CONCURRENCY = 2;
/** Past this many removals waiting for cleanup, RemovePodSandbox waits for its own (backpressure). */
const REMOVAL_BACKLOG = 32;

export class SandboxService {
  private readonly records = new Map<string, SandboxRecord>();
  private readonly names = new Map<string, string>();
  private readonly locks = new KeyedMutex();
  private readonly store: RecordStore<SandboxRecord>;
  private readonly watchers = new Map<string, AbortController>();
  /** each infra container's OCI spec, kept from RunPodSandbox (or read once at recover) */
  private readonly specs = new Map<string, OciSpec>();
  private containers: PodContainers | undefined;
  /** cleanup of removed sandboxes (infra runtime state, rootfs, pod files, record), after RemovePodSandbox answered */
  private readonly removals = new BackgroundQueue(REMOVAL_CONCURRENCY);
  private readonly log;
  private readonly userns: UsernsManager;
  private readonly ipcUts: IpcUtsPins;
  /** emits 'event' with a ContainerEvent whose containerId is the sandbox id (GetContainerEvents) */
  readonly events = new EventEmitter();

  constructor(private readonly deps: CoreDeps) {
    this.log = deps.log.child({ component: 'sandbox' });
    this.store = new RecordStore(
      path.join(deps.config.root, 'sandboxes'),
      this.log,
      isSandboxRecord,
      (rec) => ({ ...rec, state: 'removing' }),
    );
    this.userns = new UsernsManager(path.join(deps.config.state, 'userns'), deps.netns, this.log);
    this.ipcUts = new IpcUtsPins(path.join(deps.config.state, 'podns'));
  }

  setContainers(c: PodContainers): void {
    this.containers = c;
  }

  private get podsDir(): string {
    return path.join(this.deps.config.state, 'pods');
  }

  private bundleOf(id: string): string {
    return path.join(this.deps.config.state, 'bundles', id);
  }

  get(id: string): SandboxRecord | undefined {
    return this.records.get(id);
  }

  /** The infra container's OCI spec (from memory); undefined when its bundle is gone. */
  spec(id: string): OciSpec | undefined {
    return this.specs.get(id);
  }

  /** A sandbox by full id or unique prefix; NOT_FOUND otherwise. */
  resolve(idOrPrefix: string): SandboxRecord {
    const exact = this.records.get(idOrPrefix);
    if (exact) return exact;
    const matches = [...this.records.values()].filter((r) => r.id.startsWith(idOrPrefix));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1)
      throw failedPrecondition(`pod sandbox id prefix ${short(idOrPrefix)} is ambiguous`);
    throw notFound(`pod sandbox ${short(idOrPrefix)} not found`);
  }

  /** resolve(), but a sandbox that is gone is undefined: Stop and Remove of it succeed. */
  private findForTeardown(idOrPrefix: string): SandboxRecord | undefined {
    try {
      return this.resolve(idOrPrefix);
    } catch (err) {
      if (isBerthError(err, Status.NOT_FOUND)) return undefined;
      throw err;
    }
  }

  list(filter: SandboxFilter = {}): SandboxRecord[] {
    const want =
      filter.state === 'SANDBOX_READY'
        ? 'ready'
        : filter.state === 'SANDBOX_NOTREADY'
          ? 'notready'
          : undefined;
    return [...this.records.values()].filter((r) => {
      if (r.state === 'creating') return false;
      if (filter.id && !r.id.startsWith(filter.id)) return false;
      if (want && r.state !== want) return false;
      for (const [k, v] of Object.entries(filter.labels ?? {})) if (r.config.labels[k] !== v) return false;
      return true;
    });
  }

  /** The namespaces a container of this pod joins. */
  namespacePaths(rec: SandboxRecord): SandboxNamespacePaths {
    if (!podReady(rec))
      throw failedPrecondition(`pod sandbox ${short(rec.id)} is not ready (state ${rec.state})`);
    // no infra container: the pins (no PID namespace: the pod shares none)
    if (rec.dropInfra)
      return { network: rec.netnsPath, ipc: rec.ipcUts?.ipc, uts: rec.ipcUts?.uts, user: rec.usernsPath };
    const ns = (t: string): string => `/proc/${rec.pid}/ns/${t}`;
    return {
      network: rec.netnsPath,
      ipc: ns('ipc'),
      uts: ns('uts'),
      pid: ns('pid'),
      user: rec.usernsPath,
    };
  }

  /** The pod's user-namespace mapping; undefined when it uses the host's. */
  idMap(rec: SandboxRecord): IdMap | undefined {
    return podIdMap(rec.config);
  }

  /**
   * Lets the pod's root (an unprivileged host uid) reach a bundle's rootfs and the pod files:
   * runc mounts them from inside the user namespace. Adds o+x (search) only, to the state dir and
   * its ancestors (normally already so) and the dirs below it; nothing becomes listable or readable.
   */
  async openForPodRoot(bundle: string, podDir: string): Promise<void> {
    const dirs: string[] = [];
    for (let d = path.resolve(this.deps.config.state); d !== '/'; d = path.dirname(d)) dirs.push(d);
    await makeTraversable([...dirs, path.dirname(bundle), bundle, path.dirname(podDir), podDir]);
  }

  private async persist(rec: SandboxRecord, opts?: { durable?: boolean }): Promise<void> {
    await this.store.put(rec.id, rec, opts);
    this.records.set(rec.id, rec);
  }

  private async setState(
    rec: SandboxRecord,
    state: SandboxState,
    extra: Partial<SandboxRecord> = {},
  ): Promise<void> {
    Object.assign(rec, extra, { state });
    await this.persist(rec);
  }

  private async pauseImage(): Promise<ImageRecord> {
    const ref = this.deps.config.pause_image;
    return this.deps.images.get(ref) ?? (await this.deps.images.pull(ref));
  }

  async run(config: PodSandboxConfig__Output, handler: string): Promise<string> {
    const ph = new Phases('RunPodSandbox', this.deps.phases, this.log);
    const { name: runtimeHandler, runtime } = runtimeFor(this.deps, handler);
    const idmap = podIdMap(config);
    if (idmap && !featuresFor(this.deps, runtimeHandler).userns)
      throw failedPrecondition(
        `runtime handler ${short(runtimeHandler)} does not support pod user namespaces here (see Status runtime_handlers)`,
      );
    // the pod's seccomp profile is the infra container's; a Localhost one is loaded and checked
    // before anything is created
    const sc = config.linux?.security_context;
    const seccompProfile = await loadLocalhostSeccomp(seccompRequestOf(sc), sc?.privileged ?? false);
    const key = sandboxNameKey(config);
    const taken = this.names.get(key);
    if (taken)
      throw alreadyExists(
        `pod sandbox name ${short(key)} is reserved for ${taken}: remove that sandbox before creating another with the same metadata`,
      );
    const id = randomBytes(32).toString('hex');
    const dropInfra = !needsInfra(config, idmap !== undefined, this.deps.config.runtime.drop_infra_ctr);
    this.names.set(key, id);
    const rec: SandboxRecord = {
      version: 1,
      id,
      state: 'creating',
      config,
      runtimeHandler,
      createdAt: nowNs(),
      pauseImageId: '',
      podDir: path.join(this.podsDir, id),
      bundle: this.bundleOf(id),
      ips: [],
      pid: 0,
      networkUp: false,
    };
    const started = Date.now();
    ph.mark('validate');
    try {
      await this.locks.run(id, async () => {
        ph.mark('lock');
        // Everything the pod will own is named from its id, so the one record written before
        // anything exists already says where the pins go: a crash at any later point is rolled
        // back from it (teardown tolerates a pin or an attachment that never got made), and
        // nothing below waits for another record write until the pod is ready.
        if (!hostNetwork(config)) rec.netnsPath = this.deps.netns.pathFor(id);
        if (idmap) rec.usernsPath = this.userns.pathFor(id);
        if (dropInfra) {
          rec.dropInfra = true;
          // UTS goes with the network namespace, as for an infra container
          rec.ipcUts = this.ipcUts.pathsFor(id, { ipc: !hostIpc(config), uts: !hostNetwork(config) });
        }
        // rolled back after a crash; no fsync needed for that (RecordStore.put), "ready" is durable
        await this.persist(rec, { durable: false });
        ph.mark('record');
        const pause = dropInfra ? undefined : await this.pauseImage();
        rec.pauseImageId = pause?.id ?? '';
        ph.mark('pause-image');
        // Three chains run at once, joined only where one needs another's result:
        //   namespaces: the netns pin (with a user namespace, both pins; on the host network, the
        //               user namespace's alone), and without an infra container the IPC/UTS pins
        //   network:    namespaces -> CNI ADD -> /etc/hosts with the pod's IPs
        //   infra:      rootfs + pod files -> bundle -> namespaces -> runtime create -> start
        //               (none without an infra container)
        // All of them have ended (either way) before a failure rolls back, so nothing is torn
        // down while still in flight.
        const namespaces = ph.span('netns', async (): Promise<void> => {
          const ipcUts = rec.ipcUts ? this.ipcUts.create(rec.ipcUts, config.hostname) : undefined;
          // a host-network pod's user namespace is pinned without a network namespace
          const net = idmap
            ? this.userns.create(id, idmap, hostNetwork(config))
            : !hostNetwork(config)
              ? this.deps.netns.create(id)
              : undefined;
          // both settle before either failure is thrown: a rollback never races a pin being made
          const [a, b] = await Promise.allSettled([ipcUts, net]);
          for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
          if (ipcUts || net) crashPoint('sandbox-run:netns-created');
        });
        const podFiles = ph.span('pod-files', () =>
          createPodFiles({
            dir: rec.podDir,
            hostname: config.hostname,
            hostNetwork: hostNetwork(config),
            hostIpc: hostIpc(config),
            dns: config.dns_config,
          }),
        );
        const network = async (): Promise<string[]> => {
          if (hostNetwork(config)) return [];
          await namespaces;
          const m = config.metadata!;
          const up = await ph.span('cni-add', () =>
            this.deps.network.setUp(
              id,
              rec.netnsPath!,
              { namespace: m.namespace, name: m.name, uid: m.uid },
              capabilityArgs(config),
            ),
          );
          crashPoint('sandbox-run:cni-added');
          await writeHosts(await podFiles, config.hostname, up.ips);
          return up.ips;
        };
        const infra = async (): Promise<CreateResult | undefined> => {
          if (!pause) return undefined;
          const rootfs = await ph.span('rootfs', () =>
            mountRootfs(this.deps.snapshotter, id, this.deps.images.chainIds(pause), rec.bundle, idmap),
          );
          const files = await podFiles;
          const t0 = performance.now();
          const user = resolveUser(
            userRequestFrom(config.linux?.security_context, pause.config.config?.User),
            {
              passwd: await this.deps.images.readFile(pause, '/etc/passwd'),
              group: await this.deps.images.readFile(pause, '/etc/group'),
            },
          );
          const spec = buildSandboxSpec({
            id,
            config,
            image: pause.config,
            imageName: this.deps.config.pause_image,
            rootfs,
            user,
            netnsPath: rec.netnsPath,
            userNamespacePath: rec.usernsPath,
            podFiles: { shm: files.shm },
            cgroupsPath: cgroupsPathFor(
              this.deps.config.runtime.cgroup_driver,
              config.linux?.cgroup_parent,
              id,
            ),
            seccompProfile,
            host: this.deps.host,
            features: featuresFor(this.deps, runtimeHandler),
          });
          await writeBundle(rec.bundle, spec);
          this.specs.set(id, spec);
          if (idmap) await this.openForPodRoot(rec.bundle, rec.podDir);
          ph.add('bundle', performance.now() - t0);
          await namespaces;
          const created = await ph.span('runtime-create', () =>
            runtime.create({
              id,
              bundle: rec.bundle,
              logPath: path.join(rec.bundle, 'infra.log'),
              cgroupsPath: spec.linux?.cgroupsPath ?? '',
            }),
          );
          crashPoint('sandbox-run:infra-created');
          // the pause process only holds the namespaces: it may start before CNI ADD ends
          await ph.span('runtime-start', () => runtime.start(id));
          return created;
        };
        const [net, inf, ns, pf] = await Promise.allSettled([network(), infra(), namespaces, podFiles]);
        for (const r of [ns, pf, net, inf]) if (r.status === 'rejected') throw r.reason;
        const ips = (net as PromiseFulfilledResult<string[]>).value;
        const created = (inf as PromiseFulfilledResult<CreateResult | undefined>).value;
        ph.mark('network ∥ infra');
        await this.setState(rec, 'ready', { pid: created?.pid ?? 0, ips, networkUp: !hostNetwork(config) });
        ph.mark('record');
        if (created) this.watchInfra(rec);
        // the sandbox's own events, container_id = sandbox id (as containerd sends them)
        this.emit('CONTAINER_CREATED_EVENT', rec);
        this.emit('CONTAINER_STARTED_EVENT', rec);
      });
    } catch (err) {
      this.log.warn('RunPodSandbox failed; rolling back', { id, error: errMessage(err) });
      await this.rollback(rec);
      throw err;
    }
    this.log.info('pod sandbox ready', {
      id,
      pod: `${config.metadata!.namespace}/${config.metadata!.name}`,
      ips: rec.ips,
      ms: Date.now() - started,
    });
    ph.end(id);
    return id;
  }

  /** Undoes whatever of RunPodSandbox happened (also used for "creating" records at start). */
  private async rollback(rec: SandboxRecord): Promise<void> {
    await this.teardown(rec);
  }

  private emit(type: ContainerEventType, rec: SandboxRecord, gone?: SandboxRecord): void {
    this.events.emit('event', {
      type,
      containerId: rec.id,
      podId: rec.id,
      createdAt: nowNs(),
      pod: gone,
    } satisfies ContainerEvent);
  }

  /** Notices the infra container exiting by itself: the pod is then NOTREADY. */
  private watchInfra(rec: SandboxRecord): void {
    const runtime = this.deps.runtimes.get(rec.runtimeHandler);
    if (!runtime) return;
    this.watchers.get(rec.id)?.abort();
    const ac = new AbortController();
    this.watchers.set(rec.id, ac);
    runtime.waitExit(rec.id, ac.signal).then(
      () =>
        this.locks.run(rec.id, async () => {
          const cur = this.records.get(rec.id);
          if (cur && cur.state === 'ready') {
            this.log.warn('infra container exited; pod sandbox is not ready', { id: rec.id });
            await this.setState(cur, 'notready', { pid: 0 });
            this.emit('CONTAINER_STOPPED_EVENT', cur);
          }
        }),
      () => undefined,
    );
  }

  /**
   * UpdatePodSandboxResources: validates and records the pod's new overhead and resources (see
   * ./resources.ts for why no cgroup is written). NOT_FOUND for an unknown pod, FAILED_PRECONDITION
   * for one that is not ready.
   */
  async updateResources(
    idOrPrefix: string,
    overhead: LinuxContainerResources__Output | null | undefined,
    resources: LinuxContainerResources__Output | null | undefined,
  ): Promise<void> {
    const rec = this.resolve(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      if (rec.state !== 'ready')
        throw failedPrecondition(
          `pod sandbox ${short(rec.id)} is ${rec.state}: only a ready pod can be resized`,
        );
      rec.podResources = nextPodResources(rec.podResources, overhead, resources, nowNs());
      await this.persist(rec);
      this.log.info('pod resources updated', { id: rec.id, resources: rec.podResources });
    });
  }

  async stop(idOrPrefix: string): Promise<void> {
    // CRI: stopping what is already gone is not an error
    const rec = this.findForTeardown(idOrPrefix);
    if (!rec) return;
    const ph = new Phases('StopPodSandbox', this.deps.phases, this.log);
    // all at once: each gets its stop signal and a short grace (ContainerService.stopForPod)
    await Promise.all(
      (this.containers?.idsInPod(rec.id) ?? []).map((cid) => this.containers!.stopForPod(cid)),
    );
    ph.mark('containers');
    await this.locks.run(rec.id, async () => {
      ph.mark('lock');
      await this.stopInfraAndNetwork(rec, ph);
      const wasReady = rec.state === 'ready';
      if (rec.state !== 'notready' || rec.pid !== 0) await this.setState(rec, 'notready', { pid: 0 });
      ph.mark('record');
      if (wasReady) this.emit('CONTAINER_STOPPED_EVENT', rec);
    });
    ph.end(rec.id);
  }

  private async stopInfraAndNetwork(rec: SandboxRecord, ph?: Phases): Promise<void> {
    this.watchers.get(rec.id)?.abort();
    this.watchers.delete(rec.id);
    const runtime = this.deps.runtimes.get(rec.runtimeHandler);
    // "notready" is only recorded once the infra container is dead (stopped by us, or seen to
    // exit): no need to ask runc again (a process spawn) before removing it
    if (runtime && rec.state !== 'notready' && !rec.dropInfra) {
      try {
        const st = await runtime.state(rec.id);
        if (st && (st.status === 'running' || st.status === 'paused' || st.status === 'created'))
          await runtime.stop(rec.id, 'SIGKILL', 0);
      } catch (err) {
        this.log.warn('stopping the infra container failed', { id: rec.id, error: errMessage(err) });
      }
      ph?.mark('infra-kill');
    }
    if (rec.networkUp || rec.netnsPath) {
      try {
        await this.deps.network.tearDown(rec.id, rec.netnsPath);
        rec.networkUp = false;
      } catch (err) {
        // the CNI cache keeps the attachment; reconcile() retries the DEL
        this.log.warn('CNI DEL failed; will retry', { id: rec.id, error: errMessage(err) });
        rec.networkUp = false;
      }
      ph?.mark('cni-del');
    }
    if (rec.netnsPath) {
      try {
        await this.deps.netns.remove(rec.netnsPath);
      } catch (err) {
        this.log.warn('removing the network namespace failed; will retry', {
          id: rec.id,
          error: errMessage(err),
        });
      }
      ph?.mark('netns');
    }
    // what the infra container's death would have released: the pod's IPC and UTS namespaces
    if (rec.ipcUts) {
      await this.ipcUts.remove(rec.ipcUts).catch((err: unknown) =>
        this.log.warn('unpinning the IPC/UTS namespaces failed; will retry', {
          id: rec.id,
          error: errMessage(err),
        }),
      );
      ph?.mark('ipc-uts');
    }
  }

  async remove(idOrPrefix: string): Promise<void> {
    const rec = this.findForTeardown(idOrPrefix);
    if (!rec) return;
    const ph = new Phases('RemovePodSandbox', this.deps.phases, this.log);
    // each is gone for the API once its record is marked; their cleanup is queued
    for (const cid of this.containers?.idsInPod(rec.id) ?? []) await this.containers!.removeForPod(cid);
    ph.mark('containers');
    await this.locks.run(rec.id, async () => {
      ph.mark('lock');
      if (!this.records.has(rec.id)) return; // a concurrent remove won (and sent DELETED)
      // the network is released before the answer (StopPodSandbox normally did it already)
      await this.stopInfraAndNetwork(rec, ph);
      // Gone for the API once the record durably says so; the rest (runc delete of the infra
      // container, its rootfs, the pod files, the record) runs in the background after the
      // containers' own cleanup, and a restart finishes it (recover).
      await this.store.markRemoving(rec.id, rec);
      ph.mark('record');
      this.forget(rec);
      // the record is gone: the event carries it (kubelet needs the pod's status to place it)
      this.emit('CONTAINER_DELETED_EVENT', rec, rec);
      void this.removals.add(rec.id, rec.id, async () => {
        crashPoint('sandbox-remove:cleanup');
        const bg = new Phases('RemovePodSandbox (background)', this.deps.phases, this.log);
        await this.containers?.settled(rec.id);
        bg.mark('containers');
        // stopped and its network released above, under the lock (a failed CNI DEL is retried by
        // reconcile, as after StopPodSandbox)
        await this.release(rec, bg);
        bg.end(rec.id);
      });
    });
    if (this.removals.size > REMOVAL_BACKLOG) await this.removals.wait(rec.id);
    ph.mark('backlog');
    ph.end(rec.id);
  }

  /** Resolves when every removed sandbox has been cleaned up (tests, shutdown). */
  removalsSettled(): Promise<void> {
    return this.removals.drain();
  }

  /** Whether a removed sandbox's cleanup is still queued or running (reconcile leaves it be). */
  removalPending(id: string): boolean {
    return this.removals.has(id);
  }

  /** Drops a sandbox from the in-memory views (the API no longer knows it). */
  private forget(rec: SandboxRecord): void {
    this.watchers.get(rec.id)?.abort();
    this.watchers.delete(rec.id);
    this.records.delete(rec.id);
    this.specs.delete(rec.id);
    if (this.names.get(sandboxNameKey(rec.config)) === rec.id) this.names.delete(sandboxNameKey(rec.config));
  }

  /** Stops and removes everything of a sandbox, its record last; each step is best effort and logged. */
  private async teardown(rec: SandboxRecord, ph?: Phases): Promise<void> {
    await this.stopInfraAndNetwork(rec, ph);
    await this.release(rec, ph);
  }

  /**
   * What is left of a sandbox once it is stopped and its network released: the infra container's
   * runtime state, its rootfs, the pod files, the user namespace pin, then the record.
   */
  private async release(rec: SandboxRecord, ph?: Phases): Promise<void> {
    const runtime = this.deps.runtimes.get(rec.runtimeHandler);
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.warn(`sandbox teardown: ${what} failed; will retry`, { id: rec.id, error: errMessage(err) });
      }
    };
    if (!rec.dropInfra) {
      if (runtime) await step('runtime delete', () => runtime.delete(rec.id, true));
      ph?.mark('runtime-delete');
      await step('rootfs', () => releaseRootfs(this.deps.snapshotter, rec.id, rec.bundle));
      ph?.mark('rootfs');
    }
    await step('pod files', () => removePodFiles(rec.podDir));
    if (rec.usernsPath) await step('user namespace', () => this.userns.remove(rec.usernsPath!));
    if (rec.ipcUts) await step('IPC/UTS namespaces', () => this.ipcUts.remove(rec.ipcUts!));
    ph?.mark('pod-files');
    await this.store.delete(rec.id);
    ph?.mark('record');
    this.forget(rec);
  }

  /** Loads records; rolls back half-made sandboxes; notices infra containers that died meanwhile. */
  async recover(): Promise<void> {
    const loaded = await this.store.load();
    for (const rec of loaded.values()) {
      if (rec.state === 'removing') continue;
      this.records.set(rec.id, rec);
      this.names.set(sandboxNameKey(rec.config), rec.id);
    }
    for (const rec of loaded.values()) {
      if (rec.state === 'removing') {
        // RemovePodSandbox answered before a crash: finish its cleanup
        this.log.info('finishing the removal of a pod sandbox', { id: rec.id });
        await this.teardown(rec);
        continue;
      }
      if (rec.state === 'creating') {
        this.log.info('rolling back a pod sandbox whose creation was interrupted', { id: rec.id });
        await this.rollback(rec);
        continue;
      }
      if (rec.dropInfra) {
        // no process to ask: the pod is ready while its pins are (a reboot, say, loses them)
        const pinned =
          (!rec.netnsPath || (await isNsPinned(rec.netnsPath))) &&
          (!rec.ipcUts || (await this.ipcUts.intact(rec.ipcUts)));
        if (rec.state === 'ready' && !pinned) {
          this.log.warn("the pod's namespaces are gone; pod sandbox is not ready", { id: rec.id });
          await this.setState(rec, 'notready');
        }
        continue;
      }
      const spec = await readBundleSpec(rec.bundle).catch(() => undefined);
      if (spec) this.specs.set(rec.id, spec);
      const runtime = this.deps.runtimes.get(rec.runtimeHandler);
      const st = runtime ? await runtime.state(rec.id).catch(() => undefined) : undefined;
      if (rec.state === 'ready') {
        if (st?.status === 'running') {
          if (st.pid !== rec.pid) await this.setState(rec, 'ready', { pid: st.pid });
          this.watchInfra(rec);
        } else {
          this.log.warn('infra container is gone; pod sandbox is not ready', { id: rec.id });
          await this.setState(rec, 'notready', { pid: 0 });
        }
      }
    }
  }

  /**
   * Releases what no sandbox owns any more: CNI attachments left by a failed DEL, pinned network
   * namespaces, infra snapshots. Called at start (after recover) and periodically.
   */
  async reconcile(): Promise<void> {
    await this.reconcileUserns();
    await this.reconcileIpcUts();
    for (const c of await this.deps.network.listCached().catch(() => [])) {
      const rec = this.records.get(c.podId);
      if (rec && (rec.networkUp || rec.state === 'creating')) continue;
      await this.locks.run(c.podId, async () => {
        try {
          await this.deps.network.tearDown(c.podId, c.netns);
          this.log.info('released a leftover CNI attachment', { id: c.podId });
        } catch (err) {
          this.log.warn('CNI DEL retry failed', { id: c.podId, error: errMessage(err) });
        }
      });
    }
    for (const ns of await this.deps.netns.list().catch(() => [])) {
      const rec = this.records.get(ns.name);
      if (rec && rec.state !== 'notready') continue;
      if (rec?.networkUp) continue;
      await this.deps.netns.remove(ns.path).catch((err: unknown) =>
        this.log.warn('removing a leftover network namespace failed', {
          path: ns.path,
          error: errMessage(err),
        }),
      );
    }
  }

  /** Unpins IPC/UTS namespaces of pods that are gone or stopped (a failed unpin, a crash). */
  private async reconcileIpcUts(): Promise<void> {
    for (const [id, paths] of await this.ipcUts.list().catch(() => new Map<string, never>())) {
      const rec = this.records.get(id);
      if (rec && rec.state !== 'notready') continue;
      if (this.removals.has(id)) continue; // its own cleanup unpins them
      await this.locks.run(id, () =>
        this.ipcUts
          .remove(paths)
          .catch((err: unknown) =>
            this.log.warn('removing leftover IPC/UTS namespaces failed', { id, error: errMessage(err) }),
          ),
      );
    }
  }

  /** Unpins user namespaces that no sandbox owns (a crash between pinning and recording). */
  private async reconcileUserns(): Promise<void> {
    for (const name of await this.userns.list().catch(() => [])) {
      // a removed sandbox's own cleanup unpins it (and needs it until the infra container is deleted)
      if (this.records.get(name)?.usernsPath || this.removals.has(name)) continue;
      await this.userns
        .remove(name)
        .catch((err: unknown) =>
          this.log.warn('removing a leftover user namespace failed', { name, error: errMessage(err) }),
        );
    }
  }

  /** The infra container's rootfs dir (for verbose status). */
  rootfs(rec: SandboxRecord): string {
    return rootfsOf(rec.bundle);
  }

  close(): void {
    for (const ac of this.watchers.values()) ac.abort();
    this.watchers.clear();
  }
}

/** CNI capability args from the pod config: host ports and DNS. */
export function capabilityArgs(config: PodSandboxConfig__Output): CapabilityArgs {
  const args: CapabilityArgs = {};
  const ports = config.port_mappings
    .filter((p) => p.host_port > 0)
    .map((p) => ({
      hostPort: p.host_port,
      containerPort: p.container_port,
      protocol: (p.protocol || 'TCP').toLowerCase() as 'tcp' | 'udp' | 'sctp',
      hostIP: p.host_ip || undefined,
    }));
  if (ports.length) args.portMappings = ports;
  const dns = config.dns_config;
  if (dns && (dns.servers.length || dns.searches.length || dns.options.length))
    args.dns = { servers: dns.servers, searches: dns.searches, options: dns.options };
  return args;
}
