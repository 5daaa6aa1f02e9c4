// Builds and starts a whole berthd from a Config: the parts under internal/, wired together,
// recovered from disk, then the gRPC server. cmd/berthd is only flag parsing and signal handling
// around this.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, type Config } from './config/config';
import { errMessage } from './errors';
import type { Logger } from './log';
import { OverlaySnapshotter } from './snapshot/overlay';
import { LocalImageStore } from './image/store';
import { OciRuntime } from './runtime';
import { ExecHelper, defaultExecHelperPath } from './runtime/exec-helper';
import { CniManager } from './network/cni';
import { NetnsManager } from './network/netns';
import { kernelHasUserns, runtimeHasUserns } from './sandbox/userns';
import { PodCidrStore } from './network/pod-cidr';
import {
  appArmorAvailable,
  detectCgroupFeatures,
  listHostDevices,
  readEffectiveCapabilities,
  readOwnOomScoreAdj,
} from './oci/host';
import type { HostFacts, RuntimeFeatures } from './oci/spec';
import { SandboxService } from './sandbox/service';
import { ContainerService } from './container/service';
import type { CoreDeps } from './sandbox/deps';
import { StatsService } from './stats/service';
import { CgroupReader, detectLayout } from './stats/cgroup';
import { LoopHealth } from './util/loop-health';
import { PhaseStats } from './util/phases';
import { defaultRelieve, startMemoryRelief } from './util/memory-relief';
import { native } from './util/native';
import { serve, type RunningServer } from './server/server';
import type { ServerDeps } from './server/deps';
import { StreamingServer } from './streaming/server';
import { metrics } from './metrics/metrics';
import { parseListenAddress, serveMetrics, type MetricsServer } from './metrics/server';
import { readInitFacts, systemdDriverRefusal } from './runtime/cgroup-driver';

/** How often leftovers of failed teardowns (CNI attachments, netns, snapshots) are retried. */
const RECONCILE_INTERVAL_MS = 60_000;

export interface Daemon {
  deps: ServerDeps;
  server: RunningServer;
  stop(): Promise<void>;
}

export function berthVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
    dir = path.dirname(dir);
  }
  return 'unknown';
}

/**
 * berth-exec for a handler's ExecSync: runc handlers only (berth-exec reproduces runc exec; crun's
 * own exec is crun's), when enabled and built.
 */
function nativeExecFor(config: Config, runtimePath: string, log: Logger): string | undefined {
  if (!config.runtime.native_exec || path.basename(runtimePath) !== 'runc') return undefined;
  const helper = defaultExecHelperPath();
  if (helper && ExecHelper.available(helper)) return helper;
  log.warn(
    'runtime.native_exec is on but berth-exec is not built (libseccomp-dev missing?): exec through runc',
  );
  return undefined;
}

/** Facts about this host that the spec builders take as parameters; read once at start. */
async function hostFacts(config: Config, log: Logger): Promise<HostFacts> {
  const capabilities = await readEffectiveCapabilities();
  const ownOomScoreAdj = await readOwnOomScoreAdj();
  const canLowerOom = capabilities.includes('CAP_SYS_RESOURCE');
  const restrict =
    config.runtime.restrict_oom_score_adj === 'auto' ? !canLowerOom : config.runtime.restrict_oom_score_adj;
  const apparmor = await appArmorAvailable();
  if (!apparmor)
    log.info('AppArmor is not available on this kernel: AppArmor profiles other than unconfined are refused');
  return {
    devices: await listHostDevices(),
    capabilities,
    ownOomScoreAdj,
    restrictOomScoreAdj: restrict,
    appArmorAvailable: apparmor,
  };
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  if (config.runtime.cgroup_driver === 'systemd') {
    const refusal = systemdDriverRefusal(await readInitFacts());
    if (refusal) throw new ConfigError('runtime.cgroup_driver', refusal);
  }
  // event-loop delay and utilisation from the very start (recovery included); timers unref'd
  const loopHealth = new LoopHealth({
    log: log.child({ component: 'loop' }),
    warnMs: config.event_loop_warn_ms,
  });
  loopHealth.start();
  fs.mkdirSync(config.root, { recursive: true, mode: 0o711 });
  fs.mkdirSync(config.state, { recursive: true, mode: 0o711 });
  const snapshotter = new OverlaySnapshotter({
    root: path.join(config.root, 'snapshots'),
    log: log.child({ component: 'snapshot' }),
  });
  await snapshotter.init();
  const images = new LocalImageStore({
    root: config.root,
    config,
    snapshotter,
    log: log.child({ component: 'image' }),
  });
  await images.init();

  const runtimes = new Map<string, OciRuntime>();
  for (const [name, r] of Object.entries(config.runtime.runtimes)) {
    const rt = new OciRuntime({
      conmonPath: config.runtime.conmon_path,
      runtimePath: r.path,
      runtimeRoot: r.root ?? path.join(config.state, 'runtime', name),
      stateDir: path.join(config.state, 'rt', name),
      systemdCgroup: config.runtime.cgroup_driver === 'systemd',
      conmonCgroup: { driver: config.runtime.cgroup_driver, target: config.runtime.conmon_cgroup },
      log: log.child({ component: 'runtime', handler: name }),
      execHelperPath: nativeExecFor(config, r.path, log),
    });
    await rt.init();
    runtimes.set(name, rt);
  }
  const network = await CniManager.start({
    confDir: config.cni.conf_dir,
    binDirs: config.cni.bin_dirs,
    cacheDir: path.join(config.root, 'cni-cache'),
    logger: log.child({ component: 'cni' }),
  });
  const netns = new NetnsManager(path.join(config.state, 'netns'), log.child({ component: 'netns' }));
  const cg = await detectCgroupFeatures();
  const features: RuntimeFeatures = { rro: false, swap: cg.swap, hugetlb: cg.hugetlb };
  // Each handler's binary says what it supports (asked once, concurrently).
  const handlerFeatures = new Map<string, RuntimeFeatures>();
  await Promise.all(
    [...runtimes].map(async ([name, rt]) => {
      const f = await rt.features();
      // user namespaces: the runtime lists them in `features` and this kernel lets us make one
      const userns = runtimeHasUserns(f.raw) && (await kernelHasUserns());
      handlerFeatures.set(name, { ...features, rro: f.rro, mountOptions: f.mountOptions, userns });
    }),
  );
  const podCidr = new PodCidrStore(config.root, (cidr) => network.setPodCidr(cidr));
  await podCidr.load();
  const phases = new PhaseStats();
  const core: CoreDeps = {
    config,
    log,
    images,
    snapshotter,
    runtimes,
    network,
    netns,
    host: await hostFacts(config, log),
    features,
    handlerFeatures,
    phases,
  };
  const sandboxes = new SandboxService(core);
  const containers = new ContainerService(core, sandboxes);
  await sandboxes.recover();
  await containers.recover();
  const reconcile = async (): Promise<void> => {
    try {
      await containers.reconcile();
      await sandboxes.reconcile();
    } catch (err) {
      log.warn('reconcile failed', { error: errMessage(err) });
    }
  };
  await reconcile();
  const timer = setInterval(() => void reconcile(), RECONCILE_INTERVAL_MS);
  timer.unref();
  // writable layers' disk use, measured in the background (first walk now): stats and
  // ImageFsInfo read the figures from memory
  snapshotter.startUsageRefresh(config.stats.disk_usage_refresh_seconds * 1000);

  const deps: ServerDeps = {
    config,
    log,
    images,
    network: {
      status: () => {
        const s = network.status();
        return s.ready
          ? { ready: true }
          : {
              ready: false,
              reason: 'NetworkPluginNotReady',
              message: `cni: ${s.reason ?? 'no network config'}`,
            };
      },
    },
    version: berthVersion(),
    sandboxes,
    containers,
    stats: new StatsService({
      containers,
      sandboxes,
      snapshotter,
      reader: new CgroupReader(await detectLayout()),
      imageFsMountpoint: async () => images.fsMountpoint(),
      log: log.child({ component: 'stats' }),
    }),
    handlerFeatures,
    podCidr,
    loopHealth,
    phases: () => phases.summary(),
    execStats: () => Object.fromEntries([...runtimes].map(([n, rt]) => [n, rt.execStats()])),
  };
  const streaming = new StreamingServer({
    address: config.streaming.address,
    port: config.streaming.port,
    tlsCert: config.streaming.tls_cert || undefined,
    tlsKey: config.streaming.tls_key || undefined,
    idleTimeoutSeconds: config.streaming.idle_timeout_seconds,
    workDir: path.join(config.state, 'streaming'),
    log: log.child({ component: 'streaming' }),
    // Internal knob for tests of token expiry; not a config key.
    tokenTtlMs: Number(process.env.BERTH_STREAMING_TOKEN_TTL_MS) || undefined,
  });
  await streaming.start();
  deps.streaming = {
    server: streaming,
    runtime: (handler) => {
      const r = config.runtime.runtimes[handler];
      const rt = runtimes.get(handler);
      if (!r || !rt) return undefined;
      return {
        runtimePath: r.path,
        runtimeRoot: r.root ?? path.join(config.state, 'runtime', handler),
        attachSocket: (id) => rt.attachSocketPath(id),
      };
    },
  };
  metrics.setSources({
    podStates: () => sandboxes.list().map((r) => r.state),
    containerStates: () => containers.list().map((r) => r.state),
    conmonProcesses: async () =>
      (await Promise.all([...runtimes.values()].map((rt) => rt.liveConmons()))).reduce((a, b) => a + b, 0),
    loop: () => loopHealth.report(),
  });
  let metricsServer: MetricsServer | undefined;
  const metricsAt = config.metrics_address ? parseListenAddress(config.metrics_address) : undefined;
  if (metricsAt) {
    // prom-client's process collectors sample (GC observer, a lag histogram): only when served
    const registry = metrics.enable();
    registry.enableProcessMetrics();
    metricsServer = await serveMetrics(registry, metricsAt, log.child({ component: 'metrics' }));
    const a = metricsServer.address;
    log.info('serving metrics', {
      url: `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/metrics`,
    });
  }
  const server = await serve(deps);
  // RSS back down after bursts (a memory-reducing GC plus malloc_trim; see util/memory-relief.ts)
  // (BERTH_MEMORY_RELIEF=off turns it off, for measuring what it does)
  const relief =
    process.env.BERTH_MEMORY_RELIEF === 'off'
      ? { stop: () => undefined }
      : startMemoryRelief(log, {
          relieve: () => defaultRelieve(() => native().mallocTrim()),
          busy: () => loopHealth.report().utilization,
        });
  log.info('berthd serving CRI', { socket: config.socket, root: config.root, state: config.state });
  return {
    deps,
    server,
    async stop() {
      clearInterval(timer);
      relief.stop();
      await server.close();
      await metricsServer?.close();
      await streaming.stop();
      // removals answered but not yet cleaned up: give them a moment (the next start finishes any
      // that do not make it)
      await Promise.race([
        Promise.all([containers.removalsSettled(), sandboxes.removalsSettled()]),
        new Promise((r) => setTimeout(r, 5000).unref()),
      ]);
      await snapshotter.stopUsageRefresh();
      sandboxes.close();
      containers.close();
      network.close();
      loopHealth.stop();
    },
  };
}
