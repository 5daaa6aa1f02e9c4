// Driving a CRI runtime through a pod's life as kubelet's pod sync does: per container, pull per
// imagePullPolicy; RunPodSandbox (after the volumes are in place); the init containers one at a
// time, each to successful completion (a restartable init container, a sidecar, only to running);
// then the app containers. And the way back (kubelet's killPod): app containers stopped together
// with their grace period (after their preStop hook), then the sidecars in reverse order, then the
// sandbox; then the containers, the sandbox, the volumes and the logs removed.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { call, type CriClients } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import type { EnvContext } from './env';
import { PLAY_LABEL, type PlayPod } from './manifest';
import { isSidecar } from './resources';
import { nextBackoff, shouldRestart } from './restart';
import {
  containerConfig,
  containerLogPath,
  POD_NAME_LABEL,
  POD_NAMESPACE_LABEL,
  runtimeHandler,
  sandboxConfig,
  terminationLogPath,
  type NodeInfo,
} from './translate';
import { planVolumes, type ConfigSource, type VolumePlan } from './volumes';
import { setupVolumes, teardownPodDir } from './volumes-apply';

export interface PlayEvent {
  /** namespace/name */
  pod: string;
  reason: string;
  message: string;
  warning?: boolean;
}

export interface PlayOptions {
  node: NodeInfo;
  config: ConfigSource;
  event(e: PlayEvent): void;
  /** restart a failed init container (restartPolicy permitting) with back-off instead of failing: --follow */
  restartInit?: boolean;
  /** shows a pull's progress while `pulling` (the PullImage call) runs; resolves when it ends */
  watchPull?(image: string, pulling: Promise<unknown>): Promise<void>;
}

export interface RunningContainer {
  spec: V1Container;
  init: boolean;
  id: string;
  attempt: number;
  /** ids of earlier attempts still present (kubelet keeps the last dead one for its logs) */
  previous: string[];
}

export interface PodRun {
  pp: PlayPod;
  key: string;
  sandbox: PodSandboxConfig;
  sandboxId: string;
  ip: string;
  volumes: VolumePlan[];
  containers: RunningContainer[];
}

/** A container that ended badly: what `--wait` reports. */
export class ContainerFailure extends Error {
  constructor(
    readonly pod: string,
    readonly container: string,
    readonly reason: string,
    readonly exitCode: number,
    readonly logTail: string[],
  ) {
    super(`${pod}: container ${container} failed: ${reason}, exit code ${exitCode}`);
  }
}

export function podKey(pp: PlayPod): string {
  return `${pp.pod.metadata!.namespace}/${pp.pod.metadata!.name}`;
}

export function podDir(node: NodeInfo, pp: PlayPod): string {
  return path.join(node.podsDir, pp.pod.metadata!.uid!);
}

function errText(e: unknown): string {
  return (e as { details?: string }).details || (e as Error).message;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function envContext(run: Pick<PodRun, 'ip'>, opts: PlayOptions): EnvContext {
  return {
    podIP: run.ip,
    podIPs: run.ip ? [run.ip] : [],
    hostIP: opts.node.hostIP,
    nodeName: opts.node.name,
    nodeCpuMilli: opts.node.cpuMilli,
    nodeMemory: opts.node.memoryCapacity,
    ...opts.config,
  };
}

/**
 * EnsureImageExists: the image id to create the container from (or to mount an image volume by).
 * `subject` names what needs it in the error, e.g. "container web" or "image volume data".
 */
async function ensureImage(
  c: CriClients,
  run: PodRun,
  image: string,
  policy: string,
  subject: string,
  opts: PlayOptions,
): Promise<string> {
  if (policy !== 'Always') {
    const st = await call(c.image, 'ImageStatus', { image: { image } });
    if (st.image) {
      opts.event({
        pod: run.key,
        reason: 'Pulled',
        message: `Container image "${image}" already present on machine`,
      });
      return st.image.id;
    }
    if (policy === 'Never') {
      opts.event({
        pod: run.key,
        reason: 'ErrImageNeverPull',
        message: `image "${image}" is not present with pull policy Never`,
        warning: true,
      });
      throw new Error(`${run.key}: ${subject}: image ${image} is not present and its pull policy is Never`);
    }
  }
  opts.event({ pod: run.key, reason: 'Pulling', message: `Pulling image "${image}"` });
  const t0 = Date.now();
  const pulling = call(c.image, 'PullImage', { image: { image }, sandbox_config: run.sandbox });
  if (opts.watchPull) await opts.watchPull(image, pulling);
  const res = await pulling;
  opts.event({
    pod: run.key,
    reason: 'Pulled',
    message: `Successfully pulled image "${image}" in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
  });
  return res.image_ref;
}

/**
 * kubelet's getImageVolumes in SyncPod: each image volume pulled once per pod, per its pullPolicy,
 * after the sandbox runs and before any container is created; the plans come back with the image
 * ids the containers' mounts name.
 */
export async function pullImageVolumes(c: CriClients, run: PodRun, opts: PlayOptions): Promise<VolumePlan[]> {
  const out: VolumePlan[] = [];
  for (const v of run.volumes) {
    if (!v.image) {
      out.push(v);
      continue;
    }
    const { reference, pullPolicy } = v.image;
    const imageRef = await ensureImage(c, run, reference, pullPolicy, `image volume ${v.name}`, opts);
    out.push({ ...v, image: { ...v.image, imageRef } });
  }
  return out;
}

/** The CreateContainer config of a container's attempt (the pod IP known). */
export function configFor(
  run: PodRun,
  spec: V1Container,
  attempt: number,
  opts: PlayOptions,
  imageRef?: string,
): ContainerConfig {
  return containerConfig(run.pp.pod, spec, {
    node: opts.node,
    env: envContext(run, opts),
    volumes: run.volumes,
    attempt,
    imageRef,
  });
}

/**
 * KeyValue.value is bytes on the wire (cri-api main): the translation keeps env values as text (as
 * --dry-run prints them); they go out as UTF-8 bytes (a string would be read as base64).
 */
export function withEnvBytes(config: ContainerConfig): ContainerConfig {
  return {
    ...config,
    envs: config.envs?.map((e) => ({
      ...e,
      value: typeof e.value === 'string' ? Buffer.from(e.value, 'utf8') : e.value,
    })),
  };
}

/** startContainer: pull, the termination log file, CreateContainer, StartContainer. */
export async function startContainer(
  c: CriClients,
  run: PodRun,
  spec: V1Container,
  attempt: number,
  opts: PlayOptions,
): Promise<string> {
  const imageRef = await ensureImage(
    c,
    run,
    spec.image!,
    spec.imagePullPolicy ?? 'IfNotPresent',
    `container ${spec.name}`,
    opts,
  );
  const config = configFor(run, spec, attempt, opts, imageRef);
  const tlog = terminationLogPath(run.pp.pod, opts.node, spec, attempt);
  await fsp.mkdir(path.dirname(tlog), { recursive: true });
  await fsp.writeFile(tlog, '', { mode: 0o666 });
  const res = await call(c.runtime, 'CreateContainer', {
    pod_sandbox_id: run.sandboxId,
    config: withEnvBytes(config),
    sandbox_config: run.sandbox,
  });
  opts.event({ pod: run.key, reason: 'Created', message: `Created container ${spec.name}` });
  await call(c.runtime, 'StartContainer', { container_id: res.container_id });
  opts.event({ pod: run.key, reason: 'Started', message: `Started container ${spec.name}` });
  return res.container_id;
}

export interface ExitInfo {
  exitCode: number;
  reason: string;
  logPath: string;
}

/** Waits for a container to exit. */
export async function waitExit(c: CriClients, id: string, everyMs = 200): Promise<ExitInfo> {
  for (;;) {
    const s = (await call(c.runtime, 'ContainerStatus', { container_id: id })).status;
    if (s?.state === 'CONTAINER_EXITED')
      return {
        exitCode: s.exit_code,
        reason: s.reason || (s.exit_code === 0 ? 'Completed' : 'Error'),
        logPath: s.log_path,
      };
    await sleep(everyMs);
  }
}

/** A container's log file: ContainerStatus's log_path is absolute; a config's is relative to the pod's log dir. */
function logFile(run: Pick<PodRun, 'sandbox'>, logPath: string): string {
  return path.isAbsolute(logPath) ? logPath : path.join(run.sandbox.log_directory!, logPath);
}

/** The last `n` lines of a CRI-format log file (partial lines joined). */
export async function logTail(file: string, n = 10): Promise<string[]> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  const lines: string[] = [];
  let partial = '';
  for (const raw of text.split('\n')) {
    const m = /^\S+ (?:stdout|stderr) ([FP])(?: (.*))?$/.exec(raw);
    if (!m) continue;
    partial += m[2] ?? '';
    if (m[1] === 'F') {
      lines.push(partial);
      partial = '';
    }
  }
  if (partial) lines.push(partial);
  return lines.slice(-n);
}

/**
 * Plays one pod up to its app containers started. Volumes are checked before anything is sent;
 * an init container that fails stops the pod's start with a ContainerFailure (the pod is left for
 * inspection; `--down` removes it).
 */
export async function runPod(
  c: CriClients,
  pp: PlayPod,
  opts: PlayOptions,
  /** the pod is added here as soon as its sandbox runs, so a later failure still shows it */
  started: PodRun[] = [],
): Promise<PodRun> {
  const key = podKey(pp);
  const volumes = planVolumes(pp.pod, opts.node.podsDir, opts.config, opts.node.name);
  const sandbox = sandboxConfig(pp.pod, opts.node);
  // refuse a bad container (unknown volume, missing configMap key) before the first side effect
  const probeRun = { pp, key, sandbox, sandboxId: '', ip: '', volumes, containers: [] };
  for (const spec of [...(pp.pod.spec!.initContainers ?? []), ...pp.pod.spec!.containers])
    configFor(probeRun, spec, 0, opts);
  const existing = await findSandboxes(c, pp);
  if (existing.length)
    throw new Error(
      `${key} is already played (sandbox ${existing[0].slice(0, 13)}); berthctl play --down FILE first`,
    );
  await setupVolumes(volumes);
  await fsp.mkdir(sandbox.log_directory!, { recursive: true, mode: 0o755 });
  const res = await call(c.runtime, 'RunPodSandbox', {
    config: sandbox,
    runtime_handler: runtimeHandler(pp.pod),
  });
  const st = await call(c.runtime, 'PodSandboxStatus', { pod_sandbox_id: res.pod_sandbox_id });
  // a host-network pod's IP is the node's (kubelet reports the host IPs as the pod IPs)
  const ip = st.status?.network?.ip || (pp.pod.spec!.hostNetwork ? opts.node.hostIP : '');
  const run: PodRun = { ...probeRun, sandboxId: res.pod_sandbox_id, ip };
  started.push(run);
  opts.event({
    pod: key,
    reason: 'SandboxReady',
    message: `sandbox ${res.pod_sandbox_id.slice(0, 13)} ip ${run.ip || '(host network)'}`,
  });
  run.volumes = await pullImageVolumes(c, run, opts);
  for (const spec of pp.pod.spec!.initContainers ?? []) {
    const ctr: RunningContainer = { spec, init: true, id: '', attempt: 0, previous: [] };
    run.containers.push(ctr);
    let backoffS = 0;
    for (;;) {
      ctr.id = await startContainer(c, run, spec, ctr.attempt, opts);
      if (isSidecar(spec)) break;
      const exit = await waitExit(c, ctr.id);
      if (exit.exitCode === 0) break;
      opts.event({
        pod: key,
        reason: 'Failed',
        message: `init container ${spec.name} exited ${exit.exitCode} (${exit.reason})`,
        warning: true,
      });
      const policy = pp.pod.spec!.restartPolicy ?? 'Always';
      if (!opts.restartInit || !shouldRestart(policy, { init: true, sidecar: false }, exit.exitCode)) {
        throw new ContainerFailure(
          key,
          spec.name,
          `Init:${exit.reason}`,
          exit.exitCode,
          await logTail(logFile({ sandbox }, exit.logPath || containerLogPath(spec.name, ctr.attempt))),
        );
      }
      if (backoffS) {
        opts.event({
          pod: key,
          reason: 'BackOff',
          message: `Back-off ${backoffS}s restarting failed init container ${spec.name}`,
          warning: true,
        });
        await sleep(backoffS * 1000);
      }
      backoffS = nextBackoff(backoffS);
      // kubelet keeps the last dead attempt for its logs
      for (const old of ctr.previous)
        await call(c.runtime, 'RemoveContainer', { container_id: old }).catch(() => undefined);
      ctr.previous = [ctr.id];
      ctr.attempt++;
    }
  }
  for (const spec of pp.pod.spec!.containers) {
    const id = await startContainer(c, run, spec, 0, opts);
    run.containers.push({ spec, init: false, id, attempt: 0, previous: [] });
  }
  return run;
}

/** One line per pod: namespace/name, sandbox id, IP, each container's state. */
export async function podLine(c: CriClients, run: PodRun): Promise<string> {
  const states: string[] = [];
  for (const ctr of run.containers) {
    const s = (await call(c.runtime, 'ContainerStatus', { container_id: ctr.id }).catch(() => undefined))
      ?.status;
    let state = s ? s.state.replace('CONTAINER_', '').toLowerCase() : 'unknown';
    if (s?.state === 'CONTAINER_EXITED') state = `exited(${s.exit_code})`;
    states.push(`${ctr.init ? 'init:' : ''}${ctr.spec.name}=${state}`);
  }
  return `${run.key}\tsandbox=${run.sandboxId.slice(0, 13)}\tip=${run.ip || '-'}\t${states.join(' ')}`;
}

/**
 * `--wait`: until every app container runs or, for a Job's pod (or any pod that does not restart
 * Always), has completed with 0. A container that exits non-zero (or any exit under Always) is a
 * ContainerFailure.
 */
export async function waitPod(c: CriClients, run: PodRun, deadline: number): Promise<void> {
  const restartAlways = run.pp.pod.spec!.restartPolicy === 'Always';
  for (;;) {
    let pending = false;
    for (const ctr of run.containers.filter((x) => !x.init)) {
      const s = (await call(c.runtime, 'ContainerStatus', { container_id: ctr.id })).status!;
      if (s.state === 'CONTAINER_RUNNING') {
        if (run.pp.job) pending = true; // a Job's pod is done when it completes
        continue;
      }
      if (s.state === 'CONTAINER_EXITED') {
        if (s.exit_code === 0 && !restartAlways) continue;
        throw new ContainerFailure(
          run.key,
          ctr.spec.name,
          s.reason || 'Error',
          s.exit_code,
          await logTail(logFile(run, s.log_path)),
        );
      }
      pending = true;
    }
    if (!pending) return;
    if (Date.now() > deadline) throw new Error(`${run.key}: not ready before the --wait timeout`);
    await sleep(250);
  }
}

/** The sandboxes a pod of the file made (by labels), newest first. */
export async function findSandboxes(c: CriClients, pp: PlayPod): Promise<string[]> {
  const res = await call(c.runtime, 'ListPodSandbox', {
    filter: {
      label_selector: {
        [POD_NAME_LABEL]: pp.pod.metadata!.name!,
        [POD_NAMESPACE_LABEL]: pp.pod.metadata!.namespace!,
        [PLAY_LABEL]: 'true',
      },
    },
  });
  return res.items.sort((a, b) => Number(BigInt(b.created_at) - BigInt(a.created_at))).map((p) => p.id);
}

/** kubelet's minimum grace period when it kills a container */
const MIN_GRACE_S = 2;

async function runPreStop(c: CriClients, id: string, spec: V1Container, graceS: number): Promise<number> {
  const cmd = spec.lifecycle?.preStop?.exec?.command;
  if (!cmd?.length) return 0;
  const t0 = Date.now();
  await call(c.runtime, 'ExecSync', { container_id: id, cmd, timeout: graceS }, (graceS + 5) * 1000).catch(
    () => undefined,
  );
  return (Date.now() - t0) / 1000;
}

/** killContainer: the preStop hook, then StopContainer with what is left of the grace period. */
async function killContainer(
  c: CriClients,
  id: string,
  spec: V1Container | undefined,
  graceS: number,
): Promise<void> {
  let left = graceS;
  if (spec) left -= await runPreStop(c, id, spec, graceS);
  const timeout = Math.max(MIN_GRACE_S, Math.ceil(left));
  await call(c.runtime, 'StopContainer', { container_id: id, timeout }, (timeout + 30) * 1000);
}

export interface DownResult {
  key: string;
  sandboxes: string[];
}

/**
 * Stops and removes a pod of the file, as kubelet's killPod and the garbage collection after it:
 * app containers together, then sidecars in reverse order, then the sandbox; then every container
 * and the sandbox removed, the pod's volumes unmounted and its directory and logs removed.
 */
export async function downPod(
  c: CriClients,
  pp: PlayPod,
  opts: PlayOptions & { gracePeriodS?: number },
): Promise<DownResult> {
  const key = podKey(pp);
  const grace = opts.gracePeriodS ?? pp.pod.spec!.terminationGracePeriodSeconds ?? 30;
  const specs = new Map(
    [...(pp.pod.spec!.initContainers ?? []), ...pp.pod.spec!.containers].map((s) => [s.name, s] as const),
  );
  const sidecarOrder = (pp.pod.spec!.initContainers ?? []).filter(isSidecar).map((s) => s.name);
  const sandboxes = await findSandboxes(c, pp);
  for (const sb of sandboxes) {
    const list = (await call(c.runtime, 'ListContainers', { filter: { pod_sandbox_id: sb } })).containers;
    const running = list.filter((x) => x.state === 'CONTAINER_RUNNING' || x.state === 'CONTAINER_CREATED');
    const isSide = (name: string): boolean => sidecarOrder.includes(name);
    opts.event({
      pod: key,
      reason: 'Killing',
      message: `stopping ${running.length} container(s), grace period ${grace}s`,
    });
    await Promise.all(
      running
        .filter((x) => !isSide(x.metadata!.name))
        .map((x) => killContainer(c, x.id, specs.get(x.metadata!.name), grace)),
    );
    for (const name of [...sidecarOrder].reverse()) {
      for (const x of running.filter((r) => r.metadata!.name === name))
        await killContainer(c, x.id, specs.get(name), grace);
    }
    await call(c.runtime, 'StopPodSandbox', { pod_sandbox_id: sb });
    for (const x of list) await call(c.runtime, 'RemoveContainer', { container_id: x.id });
    await call(c.runtime, 'RemovePodSandbox', { pod_sandbox_id: sb });
  }
  await teardownPodDir(podDir(opts.node, pp));
  const sandbox = sandboxConfig(pp.pod, opts.node);
  await fsp.rm(sandbox.log_directory!, { recursive: true, force: true });
  await removePodCgroups(sandbox.linux!.cgroup_parent!);
  return { key, sandboxes };
}

/** The pod's own cgroup (kubelet removes it when the pod is gone); runc leaves the parents it made. */
async function removePodCgroups(parent: string): Promise<void> {
  const roots = ['/sys/fs/cgroup'];
  for (const d of await fsp.readdir('/sys/fs/cgroup').catch(() => [] as string[]))
    roots.push(path.join('/sys/fs/cgroup', d));
  for (const root of roots) await removeCgroupTree(path.join(root, parent));
}

/**
 * Removes a cgroup and the cgroups below it, deepest first, as kubelet does with a pod's cgroup:
 * the infra container's own cgroup may still be there (RemovePodSandbox deletes it in the
 * background). Cgroups that still hold processes stay (rmdir refuses them).
 */
async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(path.join(dir, e.name));
  await fsp.rmdir(dir).catch(() => undefined);
}

/** The CRI requests play would send for a pod, for `--dry-run` (ids and the pod IP as placeholders). */
export function dryRunRequests(
  pp: PlayPod,
  opts: PlayOptions,
): { method: string; request: unknown; note?: string }[] {
  const key = podKey(pp);
  const volumes = planVolumes(pp.pod, opts.node.podsDir, opts.config, opts.node.name);
  const sandbox = sandboxConfig(pp.pod, opts.node);
  const run: PodRun = {
    pp,
    key,
    sandbox,
    sandboxId: '<sandbox id>',
    ip: '<pod IP>',
    volumes,
    containers: [],
  };
  const out: { method: string; request: unknown; note?: string }[] = [];
  out.push({
    method: 'RunPodSandbox',
    request: { config: sandbox, runtime_handler: runtimeHandler(pp.pod) },
  });
  for (const v of volumes) {
    if (!v.image || v.image.pullPolicy === 'Never') continue;
    out.push({
      method: 'PullImage',
      request: { image: { image: v.image.reference }, sandbox_config: '<the RunPodSandbox config>' },
      note: `image volume ${v.name}${v.image.pullPolicy === 'IfNotPresent' ? ', only when ImageStatus does not find the image' : ''}; mounts name the image id it returns`,
    });
  }
  const all = [
    ...(pp.pod.spec!.initContainers ?? []).map((s) => ({ s, init: true })),
    ...pp.pod.spec!.containers.map((s) => ({ s, init: false })),
  ];
  for (const { s, init } of all) {
    const policy = s.imagePullPolicy ?? 'IfNotPresent';
    if (policy !== 'Never')
      out.push({
        method: 'PullImage',
        request: { image: { image: s.image }, sandbox_config: '<the RunPodSandbox config>' },
        ...(policy === 'IfNotPresent' ? { note: 'only when ImageStatus does not find the image' } : {}),
      });
    out.push({
      method: 'CreateContainer',
      request: {
        pod_sandbox_id: '<sandbox id>',
        config: configFor(run, s, 0, opts),
        sandbox_config: '<the RunPodSandbox config>',
      },
    });
    out.push({
      method: 'StartContainer',
      request: { container_id: `<${s.name} id>` },
      ...(init && !isSidecar(s) ? { note: 'then wait for it to exit 0 before the next container' } : {}),
    });
  }
  return out;
}

export { errText };
