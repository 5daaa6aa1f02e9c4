// Container and pod stats and metrics for the CRI: reads each live container's cgroup, its
// writable layer's disk use, and each ready pod's cgroup and network counters, and shapes them as
// the CRI messages kubelet reads.
//
// Where a container's cgroup is: its OCI spec's linux.cgroupsPath (the spec the container and
// sandbox services keep in memory); an absolute cgroupfs path is used as is, a systemd
// "slice:prefix:name" is looked up in /proc/<pid>/cgroup (once, then cached).
//
// The writable layer's bytes and inodes are the snapshotter's cached figures (its background
// walker measures every snapshot every `stats.disk_usage_refresh_seconds`, and a new one promptly):
// no stats call walks a tree.
//
// Where a pod's cgroup is: kubelet gives each pod its own cgroup as linux.cgroup_parent and every
// container of the pod (infra included) is created below it, so that parent is the pod cgroup,
// read directly (one cgroup, counters that survive container restarts). When the parent is shared
// (no cgroup_parent: every such pod's containers sit side by side under /berth; or two pods given
// the same parent) or unreadable, the pod is the sum of its infra container's and its live
// containers' cgroups.
//
// Only running containers and ready pods have live stats; asked for by id, a container or pod that
// is not live gets its attributes (and a container its writable layer) without cgroup figures.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type {
  ContainerStats,
  CpuUsage,
  IoUsage,
  MemoryUsage,
  MetricDescriptor,
  NetworkInterfaceUsage,
  NetworkUsage,
  PodSandboxMetrics,
  PodSandboxStats,
  PsiStats,
  SwapUsage,
} from '../../api/generated';
import type { Psi } from './io';
import type { ContainerRecord } from '../container/types';
import type { ContainerFilter } from '../container/service';
import type { SandboxFilter } from '../sandbox/service';
import { podReady, type SandboxRecord } from '../sandbox/types';
import type { Snapshotter, Usage } from '../snapshot/types';
import type { Logger } from '../log';
import type { OciSpec } from '../oci/spec-types';
import { errMessage } from '../errors';
import { type CgroupReader, type CgroupSample, sumSamples } from './cgroup';
import { parseNetDev, type NetDevEntry } from './parse';
import { CpuRateTracker } from './rate';
import { containerMetrics, metricDescriptors, networkMetrics, type BaseLabels } from './metrics';
import { expandSlice } from '../runtime/cgroup-driver';
import { mapSliced, Slicer } from '../util/slicer';

export interface StatsContainers {
  list(filter?: ContainerFilter): ContainerRecord[];
  resolve(idOrPrefix: string): ContainerRecord;
  /** the container's OCI spec, kept in memory */
  spec(id: string): OciSpec | undefined;
}

export interface StatsSandboxes {
  list(filter?: SandboxFilter): SandboxRecord[];
  resolve(idOrPrefix: string): SandboxRecord;
  get(id: string): SandboxRecord | undefined;
  /** the infra container's OCI spec, kept in memory */
  spec(id: string): OciSpec | undefined;
}

export interface StatsServiceDeps {
  containers: StatsContainers;
  sandboxes: StatsSandboxes;
  /** writable layers' usage as the snapshotter's background walker last measured it */
  snapshotter: Pick<Snapshotter, 'cachedUsage'>;
  reader: CgroupReader;
  /** the mount point of the filesystem holding the writable layers (ImageFsInfo's) */
  imageFsMountpoint(): Promise<string>;
  log: Logger;
  /** the cgroup parent runc uses when a pod gives none (cgroupsPathFor's default) */
  defaultCgroupParent?: string;
  procRoot?: string;
}

export interface ContainerStatsFilter {
  id?: string;
  podId?: string;
  labels?: Record<string, string>;
}

export interface PodStatsFilter {
  id?: string;
  labels?: Record<string, string>;
}

/** A rate is only estimated from a container's start when that start is this recent. */
const START_BASELINE_MAX_AGE_NS = 120_000_000_000n;

function wallNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

const u64 = (v: bigint | number): { value: string } => ({ value: v.toString() });

/** One container read: its cgroup sample, writable layer and when. */
interface ContainerRead {
  rec: ContainerRecord;
  cgroup?: string;
  sample: CgroupSample;
  fs?: Usage;
  ts: bigint;
  nanoCores: bigint;
}

interface PodRead {
  pod: SandboxRecord;
  cgroup?: string;
  sample: CgroupSample;
  ts: bigint;
  nanoCores: bigint;
  net?: NetDevEntry[];
  containers: ContainerRead[];
}

export class StatsService {
  private readonly rates = new CpuRateTracker();
  private readonly cgroupPaths = new Map<string, string>();
  private mountpoint: Promise<string> | undefined;
  private readonly procRoot: string;
  private readonly defaultParent: string;

  constructor(private readonly deps: StatsServiceDeps) {
    this.procRoot = deps.procRoot ?? '/proc';
    this.defaultParent = normParent(deps.defaultCgroupParent ?? '/berth');
  }

  descriptors(): MetricDescriptor[] {
    return metricDescriptors();
  }

  async containerStats(idOrPrefix: string): Promise<ContainerStats> {
    const rec = this.deps.containers.resolve(idOrPrefix);
    const read = await this.readContainer(rec, isLive(rec), false, new Slicer());
    return this.toContainerStats(read, await this.fsMountpoint());
  }

  async listContainerStats(f: ContainerStatsFilter = {}): Promise<ContainerStats[]> {
    const recs = this.deps.containers
      .list({ id: f.id, podId: f.podId, labels: f.labels, state: 'CONTAINER_RUNNING' })
      .filter(isLive);
    const slicer = new Slicer();
    const [mp, reads] = await Promise.all([
      this.fsMountpoint(),
      mapSliced(recs, (r) => this.readContainer(r, true, false, slicer), slicer),
    ]);
    if (!f.id && !f.podId && !f.labels) this.prune();
    return reads.map((r) => this.toContainerStats(r, mp));
  }

  async podStats(idOrPrefix: string): Promise<PodSandboxStats> {
    const pod = this.deps.sandboxes.resolve(idOrPrefix);
    const mp = await this.fsMountpoint();
    if (!podReady(pod)) return { attributes: podAttributes(pod), linux: { containers: [] } };
    const read = await this.readPod(pod, this.parentCounts(), false, new Slicer());
    return this.toPodStats(read, mp);
  }

  async listPodStats(f: PodStatsFilter = {}): Promise<PodSandboxStats[]> {
    const pods = this.deps.sandboxes
      .list({ id: f.id, labels: f.labels, state: 'SANDBOX_READY' })
      .filter(podReady);
    const counts = this.parentCounts();
    const slicer = new Slicer();
    const [mp, reads] = await Promise.all([
      this.fsMountpoint(),
      mapSliced(pods, (p) => this.readPod(p, counts, false, slicer), slicer),
    ]);
    if (!f.id && !f.labels) this.prune();
    return reads.map((r) => this.toPodStats(r, mp));
  }

  async podMetrics(): Promise<PodSandboxMetrics[]> {
    const pods = this.deps.sandboxes.list({ state: 'SANDBOX_READY' }).filter(podReady);
    const counts = this.parentCounts();
    const slicer = new Slicer();
    const reads = await mapSliced(pods, (p) => this.readPod(p, counts, true, slicer), slicer);
    return reads.map((r) => {
      const m = r.pod.config.metadata;
      const base = { namespace: m?.namespace ?? '', pod: m?.name ?? '' };
      const podLabels: BaseLabels = {
        ...base,
        container: 'POD',
        id: r.cgroup ?? '',
        image: '',
        name: r.pod.id,
      };
      return {
        pod_sandbox_id: r.pod.id,
        metrics: r.net ? networkMetrics(podLabels, r.net, r.ts.toString()) : [],
        container_metrics: r.containers.map((c) => ({
          container_id: c.rec.id,
          metrics: containerMetrics({
            labels: {
              ...base,
              container: c.rec.config.metadata?.name ?? '',
              id: c.cgroup ?? '',
              image: c.rec.config.image?.image ?? '',
              name: c.rec.id,
            },
            sample: c.sample,
            fs: c.fs,
            timestamp: c.ts.toString(),
          }),
        })),
      };
    });
  }

  // --- reading ---

  // Cgroup files are read synchronously (see cgroup.ts): every list goes one object at a time
  // through one Slicer, so a node's worth of reads gives the event loop back every 2 ms.
  private async readContainer(
    rec: ContainerRecord,
    live: boolean,
    detail: boolean,
    slicer: Slicer,
  ): Promise<ContainerRead> {
    const fs = this.deps.snapshotter.cachedUsage(rec.id);
    if (!live) return { rec, sample: {}, fs, ts: wallNs(), nanoCores: 0n };
    await slicer.pause();
    const cgroup = await this.cgroupOf(rec, this.deps.containers.spec(rec.id));
    const sample = cgroup ? await this.deps.reader.read(cgroup, { detail }) : {};
    const ts = wallNs();
    const nanoCores = this.rate(`c:${rec.id}`, sample, ts, rec.startedAt);
    return { rec, cgroup, sample, fs, ts, nanoCores };
  }

  private async readPod(
    pod: SandboxRecord,
    parents: Map<string, number>,
    detail: boolean,
    slicer: Slicer,
  ): Promise<PodRead> {
    const recs = this.deps.containers
      .list({ podId: pod.id, state: 'CONTAINER_RUNNING' })
      .filter((r) => r.podId === pod.id && isLive(r));
    const parent = normParent(pod.config.linux?.cgroup_parent || this.defaultParent);
    // the default parent is shared by every pod without one (and by containers of pods no longer
    // ready): never a pod's own cgroup
    const own = parent !== this.defaultParent && parent !== '/' && (parents.get(parent) ?? 0) <= 1;
    // the network counters of the pod's netns, through any process in it: the infra container, or
    // without one a running container of the pod (none running: no network stats)
    const netPid = pod.netnsPath ? pod.pid || recs[0]?.pid : undefined;
    const [containers, podSample, net, infraCgroup] = await Promise.all([
      mapSliced(recs, (r) => this.readContainer(r, true, detail, slicer), slicer),
      own ? this.deps.reader.read(parent, { detail }) : Promise.resolve(undefined),
      netPid ? this.readNet(netPid) : Promise.resolve(undefined),
      own || pod.dropInfra
        ? Promise.resolve(undefined)
        : this.cgroupOf(pod, this.deps.sandboxes.spec(pod.id)),
    ]);
    let sample = podSample;
    let cgroup: string | undefined = parent;
    if (!sample || (!sample.cpu && !sample.memory)) {
      const infraPath =
        infraCgroup ??
        (pod.dropInfra ? undefined : await this.cgroupOf(pod, this.deps.sandboxes.spec(pod.id)));
      const infra = infraPath ? await this.deps.reader.read(infraPath, { detail }) : {};
      sample = sumSamples([infra, ...containers.map((c) => c.sample)]);
      cgroup = undefined;
    }
    const ts = wallNs();
    const nanoCores = this.rate(`p:${pod.id}`, sample, ts, pod.createdAt);
    return { pod, cgroup, sample, ts, nanoCores, net, containers };
  }

  private async readNet(pid: number): Promise<NetDevEntry[] | undefined> {
    try {
      // async: the read runs on the thread pool, never on the event loop
      const t = await fsp.readFile(path.join(this.procRoot, String(pid), 'net', 'dev'), 'utf8');
      return parseNetDev(t).filter((i) => i.name !== 'lo');
    } catch {
      return undefined;
    }
  }

  /** How many ready pods put their containers under each cgroup parent. */
  private parentCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const p of this.deps.sandboxes.list({ state: 'SANDBOX_READY' })) {
      const k = normParent(p.config.linux?.cgroup_parent || this.defaultParent);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return counts;
  }

  private async cgroupOf(
    rec: { id: string; pid: number },
    spec: OciSpec | undefined,
  ): Promise<string | undefined> {
    const known = this.cgroupPaths.get(rec.id);
    if (known) return known;
    let p: string | undefined;
    try {
      const cp = spec?.linux?.cgroupsPath ?? '';
      if (cp.startsWith('/')) p = cp;
      else if (rec.pid > 0) p = await this.deps.reader.pathOfPid(rec.pid, this.procRoot);
    } catch (err) {
      this.deps.log.debug('stats: no cgroup path for a container', { id: rec.id, error: errMessage(err) });
    }
    if (p) this.cgroupPaths.set(rec.id, p);
    return p;
  }

  private rate(key: string, sample: CgroupSample, ts: bigint, startedAt: string): bigint {
    if (!sample.cpu) return 0n;
    const mono = process.hrtime.bigint();
    const now = { t: mono, usageNs: sample.cpu.usageNs };
    const started = BigInt(startedAt || '0');
    const age = ts - started;
    const baseline =
      started > 0n && age > 0n && age < START_BASELINE_MAX_AGE_NS
        ? { t: mono - age, usageNs: 0n }
        : undefined;
    return this.rates.rate(key, now, baseline);
  }

  /** Forgets samples and cgroup paths of containers and pods that are gone. */
  private prune(): void {
    const live = new Set<string>();
    const ids = new Set<string>();
    for (const c of this.deps.containers.list()) {
      live.add(`c:${c.id}`);
      ids.add(c.id);
    }
    for (const p of this.deps.sandboxes.list()) {
      live.add(`p:${p.id}`);
      ids.add(p.id);
    }
    this.rates.retain(live);
    for (const k of this.cgroupPaths.keys()) if (!ids.has(k)) this.cgroupPaths.delete(k);
  }

  private fsMountpoint(): Promise<string> {
    this.mountpoint ??= this.deps.imageFsMountpoint().catch((err: unknown) => {
      this.mountpoint = undefined;
      throw err;
    });
    return this.mountpoint;
  }

  // --- shaping ---

  private toContainerStats(r: ContainerRead, mountpoint: string): ContainerStats {
    const ts = r.ts.toString();
    const out: ContainerStats = {
      attributes: {
        id: r.rec.id,
        metadata: r.rec.config.metadata,
        labels: r.rec.config.labels,
        annotations: r.rec.config.annotations,
      },
      cpu: cpuUsage(r.sample, ts, r.nanoCores),
      memory: memoryUsage(r.sample, ts),
      swap: swapUsage(r.sample, ts),
      io: ioUsage(r.sample, ts),
    };
    if (r.fs)
      out.writable_layer = {
        timestamp: ts,
        fs_id: { mountpoint },
        used_bytes: u64(r.fs.bytes),
        inodes_used: u64(r.fs.inodes),
      };
    return out;
  }

  private toPodStats(r: PodRead, mountpoint: string): PodSandboxStats {
    const ts = r.ts.toString();
    return {
      attributes: podAttributes(r.pod),
      linux: {
        cpu: cpuUsage(r.sample, ts, r.nanoCores),
        memory: memoryUsage(r.sample, ts),
        network: r.net ? networkUsage(r.net, ts) : null,
        process: r.sample.pids === undefined ? null : { timestamp: ts, process_count: u64(r.sample.pids) },
        io: ioUsage(r.sample, ts),
        containers: r.containers.map((c) => this.toContainerStats(c, mountpoint)),
      },
    };
  }
}

function isLive(r: ContainerRecord): boolean {
  return r.state === 'running' && r.pid > 0;
}

function normParent(p: string): string {
  // systemd driver: kubelet's cgroup_parent is a slice name; its cgroup is where systemd nests it
  if (/^[^/]+\.slice$/.test(p)) return expandSlice(p);
  const s = `/${p}`.replace(/\/+/g, '/').replace(/\/$/, '');
  return s || '/';
}

function podAttributes(pod: SandboxRecord): PodSandboxStats['attributes'] {
  return {
    id: pod.id,
    metadata: pod.config.metadata,
    labels: pod.config.labels,
    annotations: pod.config.annotations,
  };
}

function cpuUsage(s: CgroupSample, ts: string, nanoCores: bigint): CpuUsage | null {
  if (!s.cpu) return null;
  return {
    timestamp: ts,
    usage_core_nano_seconds: u64(s.cpu.usageNs),
    usage_nano_cores: u64(nanoCores),
    psi: psiStats(s.psi?.cpu),
  };
}

/** CRI PsiStats from a *.pressure reading; null where the kernel gave none (never invented). */
export function psiStats(p: Psi | undefined): PsiStats | null {
  if (!p) return null;
  const line = (l: Psi['some']) =>
    l ? { Total: l.total.toString(), Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 } : null;
  return { Full: line(p.full), Some: line(p.some) };
}

/**
 * CRI IoUsage: the timestamp and I/O PSI (the message has no byte counters; those are in the
 * container_fs_* and container_blkio_* metrics). Present when the cgroup has I/O accounting or PSI.
 */
function ioUsage(s: CgroupSample, ts: string): IoUsage | null {
  if (!s.io && !s.psi?.io) return null;
  return { timestamp: ts, psi: psiStats(s.psi?.io) };
}

function memoryUsage(s: CgroupSample, ts: string): MemoryUsage | null {
  const m = s.memory;
  if (!m) return null;
  const out: MemoryUsage = {
    timestamp: ts,
    working_set_bytes: u64(m.workingSet),
    usage_bytes: u64(m.usage),
    rss_bytes: u64(m.rss),
    page_faults: u64(m.pageFaults),
    major_page_faults: u64(m.majorPageFaults),
    psi: psiStats(s.psi?.memory),
  };
  if (m.limit !== undefined) out.available_bytes = u64(m.limit > m.workingSet ? m.limit - m.workingSet : 0n);
  return out;
}

function swapUsage(s: CgroupSample, ts: string): SwapUsage | null {
  if (s.memory?.swap === undefined) return null;
  return { timestamp: ts, swap_usage_bytes: u64(s.memory.swap) };
}

/** kubelet reads default_interface as the pod's network; the CNI interface is eth0. */
function networkUsage(ifaces: NetDevEntry[], ts: string): NetworkUsage {
  const toIface = (i: NetDevEntry): NetworkInterfaceUsage => ({
    name: i.name,
    rx_bytes: u64(i.rxBytes),
    rx_errors: u64(i.rxErrors),
    tx_bytes: u64(i.txBytes),
    tx_errors: u64(i.txErrors),
  });
  const def = ifaces.find((i) => i.name === 'eth0') ?? ifaces[0];
  return {
    timestamp: ts,
    default_interface: def ? toIface(def) : null,
    interfaces: ifaces.map(toIface),
  };
}
