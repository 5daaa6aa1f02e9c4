// Resources as kubelet computes them: the pod's QoS class, its cgroup parent (cgroupfs driver),
// a container's Linux resources (cpu shares and CFS quota, memory limit) and its oom_score_adj.
// Sources: k8s.io/kubernetes pkg/apis/core/v1/helper/qos (ComputePodQOS), pkg/kubelet/qos
// (GetContainerOOMScoreAdjust), pkg/kubelet/kuberuntime/kuberuntime_container_linux.go
// (calculateLinuxResources) and helpers_linux.go (milliCPUToShares, milliCPUToQuota).
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { LinuxContainerResources } from '../../api/generated';
import { intValue, milliValue, parseQuantity } from './quantity';

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

const MIN_SHARES = 2;
const MAX_SHARES = 262144;
const SHARES_PER_CPU = 1024;
const QUOTA_PERIOD = 100000; // µs, kubelet's default cpuCFSQuotaPeriod
const MIN_QUOTA_PERIOD = 1000;
export const GUARANTEED_OOM_SCORE_ADJ = -997;
export const BESTEFFORT_OOM_SCORE_ADJ = 1000;

type List = Record<string, string | number> | undefined;

function positive(list: List, name: string, what: string): number | undefined {
  const q = list?.[name];
  if (q === undefined) return undefined;
  const v = parseQuantity(q, `${what}.${name}`);
  return v > 0 ? v : undefined;
}

function allContainers(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
}

/** ComputePodQOS: from the cpu and memory requests and limits of every container, init ones included. */
export function podQos(pod: V1Pod): QosClass {
  const requests: Record<string, number> = {};
  const limits: Record<string, number> = {};
  let guaranteed = true;
  for (const c of allContainers(pod)) {
    const what = `container ${c.name} resources`;
    for (const r of ['cpu', 'memory']) {
      const req = positive(c.resources?.requests, r, `${what}.requests`);
      if (req !== undefined) requests[r] = (requests[r] ?? 0) + req;
    }
    const found = new Set<string>();
    for (const r of ['cpu', 'memory']) {
      const lim = positive(c.resources?.limits, r, `${what}.limits`);
      if (lim !== undefined) {
        found.add(r);
        limits[r] = (limits[r] ?? 0) + lim;
      }
    }
    if (!found.has('cpu') || !found.has('memory')) guaranteed = false;
  }
  const reqNames = Object.keys(requests);
  if (reqNames.length === 0 && Object.keys(limits).length === 0) return 'BestEffort';
  if (guaranteed) {
    for (const r of reqNames) {
      if (limits[r] === undefined || Math.abs(limits[r] - requests[r]) > 1e-9) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && reqNames.length === Object.keys(limits).length ? 'Guaranteed' : 'Burstable';
}

/** The pod's cgroup under kubelet's cgroupfs driver: /kubepods[/burstable|/besteffort]/pod<uid>. */
export function podCgroupParent(qos: QosClass, uid: string): string {
  const tier = qos === 'Guaranteed' ? '' : `/${qos.toLowerCase()}`;
  return `/kubepods${tier}/pod${uid}`;
}

export function milliCpuToShares(milliCpu: number): number {
  if (milliCpu === 0) return MIN_SHARES;
  const shares = Math.floor((milliCpu * SHARES_PER_CPU) / 1000);
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

export function milliCpuToQuota(milliCpu: number, period: number): number {
  if (milliCpu === 0) return 0;
  return Math.max(MIN_QUOTA_PERIOD, Math.floor((milliCpu * period) / 1000));
}

/** calculateLinuxResources(cpuRequest, cpuLimit, memoryLimit), with cpuCFSQuota on (kubelet's default). */
export function linuxResources(
  cpuRequestMilli: number,
  cpuLimitMilli: number,
  memoryLimit: number,
): LinuxContainerResources {
  const shares =
    cpuRequestMilli === 0 && cpuLimitMilli !== 0
      ? milliCpuToShares(cpuLimitMilli)
      : milliCpuToShares(cpuRequestMilli);
  const r: LinuxContainerResources = { cpu_shares: shares };
  if (memoryLimit !== 0) r.memory_limit_in_bytes = memoryLimit;
  r.cpu_quota = milliCpuToQuota(cpuLimitMilli, QUOTA_PERIOD);
  r.cpu_period = QUOTA_PERIOD;
  return r;
}

function milli(list: List, name: string, what: string): number {
  const q = list?.[name];
  return q === undefined ? 0 : milliValue(q, `${what}.${name}`);
}

function bytes(list: List, name: string, what: string): number {
  const q = list?.[name];
  return q === undefined ? 0 : intValue(q, `${what}.${name}`);
}

/** A container's requests and limits of cpu (millicores) and memory (bytes). */
export function containerAmounts(c: V1Container): {
  cpuRequest: number;
  cpuLimit: number;
  memRequest: number;
  memLimit: number;
} {
  const what = `container ${c.name} resources`;
  return {
    cpuRequest: milli(c.resources?.requests, 'cpu', `${what}.requests`),
    cpuLimit: milli(c.resources?.limits, 'cpu', `${what}.limits`),
    memRequest: bytes(c.resources?.requests, 'memory', `${what}.requests`),
    memLimit: bytes(c.resources?.limits, 'memory', `${what}.limits`),
  };
}

function isNodeCritical(pod: V1Pod): boolean {
  return pod.spec?.priorityClassName === 'system-node-critical';
}

/** kubelet's restartable init container: an init container with restartPolicy Always (a sidecar). */
export function isSidecar(c: V1Container): boolean {
  return c.restartPolicy === 'Always';
}

/** GetContainerOOMScoreAdjust for a node with `memoryCapacity` bytes of memory. */
export function oomScoreAdj(pod: V1Pod, c: V1Container, memoryCapacity: number): number {
  if (isNodeCritical(pod)) return GUARANTEED_OOM_SCORE_ADJ;
  const qos = podQos(pod);
  if (qos === 'Guaranteed') return GUARANTEED_OOM_SCORE_ADJ;
  if (qos === 'BestEffort') return BESTEFFORT_OOM_SCORE_ADJ;
  const score = (request: number): number => 1000 - Math.trunc((1000 * request) / memoryCapacity);
  let adj = score(containerAmounts(c).memRequest);
  const isInit = (pod.spec?.initContainers ?? []).includes(c);
  if (isInit && isSidecar(c)) {
    // a sidecar is as precious as the most precious app container
    const app = pod.spec?.containers ?? [];
    if (app.length) adj = Math.min(adj, score(Math.min(...app.map((a) => containerAmounts(a).memRequest))));
  }
  if (adj < 1000 + GUARANTEED_OOM_SCORE_ADJ) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (adj === BESTEFFORT_OOM_SCORE_ADJ) return adj - 1;
  return adj;
}

/** A container's LinuxContainerResources as kubelet sends them in CreateContainer. */
export function containerResources(
  pod: V1Pod,
  c: V1Container,
  memoryCapacity: number,
): LinuxContainerResources {
  const a = containerAmounts(c);
  return {
    ...linuxResources(a.cpuRequest, a.cpuLimit, a.memLimit),
    oom_score_adj: oomScoreAdj(pod, c, memoryCapacity),
  };
}

/**
 * The pod's effective requests and limits (resourcehelper.PodRequests/PodLimits): the app
 * containers and sidecars summed, or the largest init container (plus the sidecars started before
 * it) when that is larger. A limit of 0 (unset) anywhere leaves the pod's limit unset.
 */
export function podAmounts(pod: V1Pod): { cpuRequest: number; cpuLimit: number; memLimit: number } {
  const app = (pod.spec?.containers ?? []).map(containerAmounts);
  const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
  let cpuRequest = sum(app.map((a) => a.cpuRequest));
  let cpuLimit = app.some((a) => a.cpuLimit === 0) ? 0 : sum(app.map((a) => a.cpuLimit));
  let memLimit = app.some((a) => a.memLimit === 0) ? 0 : sum(app.map((a) => a.memLimit));
  let sidecarCpu = 0;
  let sidecarCpuLimit = 0;
  let sidecarMemLimit = 0;
  const inits = pod.spec?.initContainers ?? [];
  for (const c of inits) {
    const a = containerAmounts(c);
    if (isSidecar(c)) {
      sidecarCpu += a.cpuRequest;
      sidecarCpuLimit += a.cpuLimit;
      sidecarMemLimit += a.memLimit;
      cpuRequest += a.cpuRequest;
      if (cpuLimit) cpuLimit = a.cpuLimit ? cpuLimit + a.cpuLimit : 0;
      if (memLimit) memLimit = a.memLimit ? memLimit + a.memLimit : 0;
    } else {
      cpuRequest = Math.max(cpuRequest, a.cpuRequest + sidecarCpu);
      if (cpuLimit && a.cpuLimit) cpuLimit = Math.max(cpuLimit, a.cpuLimit + sidecarCpuLimit);
      if (memLimit && a.memLimit) memLimit = Math.max(memLimit, a.memLimit + sidecarMemLimit);
    }
  }
  return { cpuRequest, cpuLimit, memLimit };
}

/** calculateSandboxResources: the pod-level resources kubelet puts in the sandbox config. */
export function sandboxResources(pod: V1Pod): LinuxContainerResources {
  const p = podAmounts(pod);
  return linuxResources(p.cpuRequest, p.cpuLimit, p.memLimit);
}
