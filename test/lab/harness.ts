// The set-up most pod and container tests share: a lab registry with the pause and busybox images,
// a lab CNI network, a log dir and a berthd using them, plus small typed helpers for the CRI calls
// the tests make. cleanup() removes every pod and then all of it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { startBerthd, type TestDaemon } from './berthd';
import { startRegistry, type LabRegistry } from './registry';
import { busyboxLayer, pushImage, pushPause } from './images';
import { makeLabNetwork, type LabNetwork } from './cni';

/**
 * The namespace options kubelet sends for a pod without shareProcessNamespace or host namespaces
 * (pid CONTAINER: Berth runs such a pod without an infra container).
 */
export const KUBELET_NAMESPACES = { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } as const;

export interface Harness {
  reg: LabRegistry;
  d: TestDaemon;
  netw: LabNetwork;
  logDir: string;
  /** busybox (with the lab users alice and bob), pulled */
  busybox: string;
  /** a fresh pod config with a unique name; `extra` is merged on top */
  podConfig(extra?: Partial<PodSandboxConfig>): PodSandboxConfig;
  ctrConfig(name: string, command: string[], extra?: Partial<ContainerConfig>): ContainerConfig;
  runPod(cfg: PodSandboxConfig): Promise<string>;
  /** CreateContainer + StartContainer */
  startCtr(podId: string, pod: PodSandboxConfig, cfg: ContainerConfig): Promise<string>;
  exec(id: string, cmd: string[], timeout?: number): Promise<{ out: string; err: string; code: number }>;
  waitExited(id: string, ms?: number): Promise<{ exit_code: number; reason: string }>;
  /** StopPodSandbox + RemovePodSandbox, then waits until the background cleanup is done */
  removePod(id: string): Promise<void>;
  /**
   * Starts busybox httpd on :8080 in the pod serving /www/index.html ("hello") and /www/big
   * (`bigBytes` random bytes), and returns once it answers on the pod's loopback.
   */
  startWebServer(podId: string, pod: PodSandboxConfig, bigBytes: number): Promise<string>;
  cleanup(): Promise<void>;
}

export interface HarnessOptions {
  /** the test file's own bridge and subnet (each file its own, so files never share a network) */
  bridge: string;
  subnet: string;
  /** extra berthd config */
  config?: Record<string, unknown>;
  /** name prefix of the pods */
  prefix?: string;
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const reg = await startRegistry();
  const netw = makeLabNetwork(opts.bridge, opts.subnet);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-logs-'));
  let d: TestDaemon | undefined;
  const prefix = opts.prefix ?? 'pod';
  let counter = 0;
  try {
    await pushPause(reg);
    const busybox = (
      await pushImage(reg, 'library/busybox', 'latest', { layers: [busyboxLayer({ users: true })] })
    ).reference;
    const config = opts.config ?? {};
    d = await startBerthd({
      pause_image: `${reg.host}/pause:3.10`,
      ...config,
      cni: { conf_dir: netw.confDir, bin_dirs: ['/usr/lib/cni'], ...((config.cni as object) ?? {}) },
    });
    await call(d.clients.image, 'PullImage', { image: { image: busybox } });
    const daemon = d;
    const h: Harness = {
      reg,
      d: daemon,
      netw,
      logDir,
      busybox,
      podConfig(extra = {}) {
        const n = `${prefix}${++counter}`;
        return {
          metadata: { name: n, namespace: 'it', uid: `uid-${n}-${process.pid}`, attempt: 0 },
          hostname: n,
          log_directory: path.join(logDir, n),
          linux: {},
          ...extra,
        };
      },
      ctrConfig(name, command, extra = {}) {
        return {
          metadata: { name, attempt: 0 },
          image: { image: busybox },
          command,
          log_path: `${name}/0.log`,
          linux: {},
          ...extra,
        };
      },
      async runPod(cfg) {
        return (await call(h.d.clients.runtime, 'RunPodSandbox', { config: cfg })).pod_sandbox_id;
      },
      async startCtr(podId, pod, cfg) {
        const c = await call(h.d.clients.runtime, 'CreateContainer', {
          pod_sandbox_id: podId,
          config: cfg,
          sandbox_config: pod,
        });
        await call(h.d.clients.runtime, 'StartContainer', { container_id: c.container_id });
        return c.container_id;
      },
      async exec(id, cmd, timeout = 10) {
        const r = await call(h.d.clients.runtime, 'ExecSync', { container_id: id, cmd, timeout });
        return {
          out: Buffer.from(r.stdout).toString(),
          err: Buffer.from(r.stderr).toString(),
          code: r.exit_code,
        };
      },
      async waitExited(id, ms = 20_000) {
        const deadline = Date.now() + ms;
        for (;;) {
          const s = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: id });
          if (s.status?.state === 'CONTAINER_EXITED') return s.status;
          if (Date.now() > deadline) throw new Error(`container ${id} still ${s.status?.state}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async startWebServer(podId, pod, bigBytes) {
        const id = await h.startCtr(
          podId,
          pod,
          h.ctrConfig('web', [
            'sh',
            '-c',
            `mkdir -p /www && head -c ${bigBytes} /dev/urandom > /www/big && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www`,
          ]),
        );
        for (let i = 0; i < 100; i++) {
          const r = await h.exec(id, [
            'sh',
            '-c',
            'test -s /www/big && wget -qO- http://127.0.0.1:8080/index.html',
          ]);
          if (r.out.includes('hello')) return id;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error('httpd in the pod did not come up');
      },
      async removePod(id) {
        await call(h.d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: id });
        await call(h.d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: id });
        await h.d.settled();
      },
      async cleanup() {
        try {
          const pods = await call(h.d.clients.runtime, 'ListPodSandbox', {}).catch(() => ({ items: [] }));
          for (const p of pods.items) await h.removePod(p.id).catch(() => undefined);
          await h.d.cleanup();
        } finally {
          await reg.stop();
          netw.cleanup();
          fs.rmSync(logDir, { recursive: true, force: true });
        }
      },
    };
    return h;
  } catch (err) {
    await d?.cleanup().catch(() => undefined);
    await reg.stop();
    netw.cleanup();
    fs.rmSync(logDir, { recursive: true, force: true });
    throw err;
  }
}
