// The CNI manager: keeps the network config loaded from the conf dir (reloaded when it changes),
// reports whether the network is ready, and sets up, checks and tears down pod networks.
//
// Every pod's network state is cached on disk (`<cacheDir>/<podId>.json`, written atomically):
// the config list and capability args used, the pod's CNI_ARGS values, and, once ADD finished, its
// result. The record is written *before* the first plugin runs, so DEL after a crash mid-ADD, after
// a restart, or after the conf dir changed still runs the same plugins with the same arguments,
// and the record is deleted only when DEL succeeded: a pod whose record remains still holds
// network resources (listCached() is the list to retry).
import { watch as fsWatch, promises as fsp, type FSWatcher } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import {
  BerthError,
  Status,
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  short,
} from '../errors';
import type { Logger } from '../log';
import { atomicWriteJson, cleanTempFiles, quarantine, TMP_MARK } from '../util/fs';
import { KeyedMutex } from '../util/keyed-mutex';
import {
  compareVersions,
  loadConfDir,
  type LoadedConfig,
  type NetworkConfigList,
  type PluginConf,
} from './conflist';
import {
  buildCniArgs,
  buildPluginConf,
  execPlugin,
  findPlugin,
  validateContainerId,
  CniPluginError,
  type CapabilityArgs,
  type CniCommand,
  type IpRange,
  type PodRef,
} from './cni-plugin';
import { parseCniResult, podIPs, type CniResult } from './cni-result';
import { isNsPinned } from './netns';
import { metrics, secondsSince } from '../metrics/metrics';

export type { BandwidthArgs, CapabilityArgs, DnsArgs, IpRange, PodRef, PortMapping } from './cni-plugin';
export { CniPluginError, validateCniArgValue } from './cni-plugin';
export type { CniResult } from './cni-result';

export interface CniManagerOptions {
  /** directory of .conflist/.conf/.json files; default /etc/cni/net.d */
  confDir?: string;
  /** where plugin binaries are searched, in order; default /opt/cni/bin, /usr/lib/cni */
  binDirs?: string[];
  /** where per-pod network records live; e.g. <root>/cni-cache (must survive reboots: IPs do) */
  cacheDir: string;
  logger?: Logger;
  /** interface name inside the pod; default eth0 */
  ifName?: string;
  /** each plugin run is killed after this long; default 60 s */
  pluginTimeoutMs?: number;
  /** watch the conf dir and reload on change; default true */
  watch?: boolean;
  /** quiet time after the last change before reloading; default 100 ms */
  debounceMs?: number;
}

export interface NetworkStatus {
  ready: boolean;
  /** why the network is not ready */
  reason?: string;
  /** the loaded network's name and file, when one is loaded */
  network?: string;
  file?: string;
}

export interface SetUpResult {
  /** pod IPs, IPv4 first; the first is the pod's primary IP */
  ips: string[];
  result: CniResult;
  network: string;
}

export interface CachedNetwork {
  podId: string;
  /** adding: ADD started but did not finish (crash or failed cleanup); added: set up */
  state: 'adding' | 'added';
  netns: string;
  network: string;
  ips: string[];
}

/** DEL failed for some plugins; the pod's record stays so the teardown can be retried. */
export class CniTeardownError extends BerthError {
  constructor(
    readonly podId: string,
    readonly failures: CniPluginError[],
  ) {
    super(
      Status.INTERNAL,
      `tearing down the network of pod sandbox ${short(podId)}: ${failures.map((f) => f.message).join('; ')}`,
    );
    this.name = 'CniTeardownError';
  }
}

interface CacheRecord {
  version: 1;
  podId: string;
  state: 'adding' | 'added';
  netns: string;
  ifName: string;
  pod: PodRef;
  capabilityArgs: CapabilityArgs;
  file: string;
  config: NetworkConfigList;
  /** the final ADD result, as the last plugin printed it */
  result?: unknown;
  updatedAt: string;
}

const DEFAULT_CONF_DIR = '/etc/cni/net.d';
const DEFAULT_BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];
const WATCH_RETRY_MS = 2000;
/** While plugins are missing, how often status() may start a look for them. */
const PLUGIN_RECHECK_MS = 1000;

/** Validates and normalises capability args from a request (protocols lower-cased). */
export function validateCapabilityArgs(args: CapabilityArgs): CapabilityArgs {
  const out: CapabilityArgs = { ...args };
  if (args.portMappings) {
    out.portMappings = args.portMappings.map((p, i) => {
      const port = (v: unknown, what: string): number => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
          throw invalidArgument(`port_mappings[${i}].${what} ${short(v)} is not a port number`);
        return v;
      };
      const protocol = String(p.protocol ?? 'tcp').toLowerCase();
      if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp')
        throw invalidArgument(`port_mappings[${i}].protocol ${short(p.protocol)} is not TCP, UDP or SCTP`);
      if (p.hostIP && !isIP(p.hostIP))
        throw invalidArgument(`port_mappings[${i}].host_ip ${short(p.hostIP)} is not an IP`);
      return {
        hostPort: port(p.hostPort, 'host_port'),
        containerPort: port(p.containerPort, 'container_port'),
        protocol,
        ...(p.hostIP ? { hostIP: p.hostIP } : {}),
      };
    });
  }
  return out;
}

/** Pod CIDRs ("10.244.1.0/24" or "10.244.1.0/24,fd00:1::/64") as the ipRanges capability wants them. */
export function podCidrRanges(cidrs: string | readonly string[]): IpRange[][] {
  const list = (typeof cidrs === 'string' ? cidrs.split(',') : cidrs).map((c) => c.trim()).filter(Boolean);
  return list.map((c) => {
    const [ip, bits] = c.split('/');
    if (!isIP(ip) || !/^\d{1,3}$/.test(bits ?? ''))
      throw invalidArgument(`pod CIDR ${short(c)} is not a CIDR`);
    return [{ subnet: c }];
  });
}

export class CniManager {
  readonly confDir: string;
  readonly binDirs: readonly string[];
  readonly cacheDir: string;
  readonly ifName: string;
  private readonly logger: Logger | undefined;
  private readonly timeoutMs: number;
  private readonly debounceMs: number;
  private readonly locks = new KeyedMutex();
  private loaded: LoadedConfig | undefined;
  private notReadyReason: string | undefined = 'network config not loaded yet';
  private missingPlugins: string[] = [];
  private podRanges: IpRange[][] = [];
  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<NetworkStatus> | undefined;
  /** the background look for missing plugins in progress, and when the last one started */
  private pluginCheck: Promise<void> | undefined;
  private pluginCheckAt = 0;
  private reloadAgain = false;
  private closed = false;

  private constructor(opts: CniManagerOptions) {
    this.confDir = path.resolve(opts.confDir ?? DEFAULT_CONF_DIR);
    this.binDirs = opts.binDirs ?? DEFAULT_BIN_DIRS;
    this.cacheDir = path.resolve(opts.cacheDir);
    this.ifName = opts.ifName ?? 'eth0';
    this.logger = opts.logger;
    this.timeoutMs = opts.pluginTimeoutMs ?? 60_000;
    this.debounceMs = opts.debounceMs ?? 100;
  }

  /** Creates the cache dir, loads the config and (unless opts.watch is false) starts watching. */
  static async start(opts: CniManagerOptions): Promise<CniManager> {
    const m = new CniManager(opts);
    await fsp.mkdir(m.cacheDir, { recursive: true, mode: 0o700 });
    await cleanTempFiles(m.cacheDir);
    if (opts.watch !== false) m.startWatch();
    await m.reload();
    return m;
  }

  /**
   * Ready once a valid config is loaded and all its plugins are found. From memory (the Status RPC
   * calls this every few seconds): plugins may be installed after the config and their dirs are
   * not watched, so while some are missing a call starts an async look for them (at most one per
   * PLUGIN_RECHECK_MS) whose result the following calls see.
   */
  status(): NetworkStatus {
    if (this.loaded && this.missingPlugins.length && Date.now() - this.pluginCheckAt >= PLUGIN_RECHECK_MS)
      void this.checkMissingPlugins();
    const where = this.loaded ? { network: this.loaded.config.name, file: this.loaded.file } : {};
    return this.notReadyReason
      ? { ready: false, reason: this.notReadyReason, ...where }
      : { ready: true, ...where };
  }

  /** Looks for the missing plugins again (one look at a time); clears the reason when all are found. */
  private checkMissingPlugins(): Promise<void> {
    this.pluginCheck ??= (async () => {
      this.pluginCheckAt = Date.now();
      const loaded = this.loaded;
      const still: string[] = [];
      for (const t of this.missingPlugins) if (!(await findPlugin(t, this.binDirs))) still.push(t);
      // a reload meanwhile made its own list
      if (this.loaded !== loaded || !this.missingPlugins.length) return;
      this.missingPlugins = still;
      if (!still.length) {
        this.notReadyReason = undefined;
        this.logger?.info('CNI plugins found; network ready', { file: loaded?.file });
      }
    })().finally(() => (this.pluginCheck = undefined));
    return this.pluginCheck;
  }

  /** Reloads the config now. Concurrent calls share one load; a call during a load triggers another. */
  reload(): Promise<NetworkStatus> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        do {
          this.reloadAgain = false;
          await this.loadOnce();
        } while (this.reloadAgain && !this.closed);
      } finally {
        this.reloading = undefined;
      }
      return this.status();
    })();
    return this.reloading;
  }

  /** Sets the node's pod CIDR(s) (UpdateRuntimeConfig), passed as `ipRanges` to plugins that ask. */
  setPodCidr(cidrs: string | readonly string[]): void {
    this.podRanges = podCidrRanges(cidrs);
  }

  private async loadOnce(): Promise<void> {
    const r = await loadConfDir(this.confDir);
    for (const s of r.skipped)
      this.logger?.warn('skipping invalid CNI config', { file: s.file, reason: s.reason });
    const before = this.loaded;
    this.loaded = r.loaded;
    if (!r.loaded) {
      this.missingPlugins = [];
      this.notReadyReason = r.reason;
      if (before) this.logger?.warn('CNI network config gone', { reason: r.reason });
      // A deleted conf dir kills the watch; watch again once it is back.
      if (r.reason?.includes('directory missing') && this.watcher) {
        this.watcher.close();
        this.watcher = undefined;
        this.scheduleWatchRetry();
      }
      return;
    }
    const missing: string[] = [];
    for (const p of r.loaded.config.plugins)
      if (!missing.includes(p.type) && !(await findPlugin(p.type, this.binDirs))) missing.push(p.type);
    this.missingPlugins = missing;
    this.notReadyReason = missing.length
      ? `CNI plugin(s) ${missing.join(', ')} of ${r.loaded.file} not found in ${this.binDirs.join(', ')}`
      : undefined;
    if (before?.file !== r.loaded.file || JSON.stringify(before.config) !== JSON.stringify(r.loaded.config))
      this.logger?.info('CNI network config loaded', {
        file: r.loaded.file,
        network: r.loaded.config.name,
        plugins: r.loaded.config.plugins.map((p) => p.type),
        ...(missing.length ? { missing } : {}),
      });
  }

  private startWatch(): void {
    if (this.closed || this.watcher) return;
    try {
      const w = fsWatch(this.confDir, { persistent: false }, () => this.scheduleReload());
      w.on('error', (err) => {
        this.logger?.warn('watching the CNI conf dir failed', { dir: this.confDir, error: err.message });
        w.close();
        if (this.watcher === w) this.watcher = undefined;
        this.scheduleWatchRetry();
        this.scheduleReload();
      });
      this.watcher = w;
    } catch {
      // Most likely the dir does not exist yet; look for it again later.
      this.scheduleWatchRetry();
    }
  }

  private scheduleWatchRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.startWatch();
      if (this.watcher) void this.reload();
    }, WATCH_RETRY_MS);
    this.retryTimer.unref();
  }

  private scheduleReload(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.reload().catch((err: unknown) =>
        this.logger?.error('reloading CNI config failed', { error: String(err) }),
      );
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  /** Stops watching. Pending operations finish. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  // ---- pod networks ----

  private cachePath(podId: string): string {
    return path.join(this.cacheDir, `${podId}.json`);
  }

  /** Reads a pod's record; a corrupt one is moved aside (and reported) and treated as absent. */
  private async readCache(podId: string): Promise<CacheRecord | undefined> {
    const file = this.cachePath(podId);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const rec = JSON.parse(text) as CacheRecord;
      if (rec.version !== 1 || rec.podId !== podId || !rec.config?.plugins)
        throw new Error('unknown record format');
      return rec;
    } catch (err) {
      const moved = await quarantine(file);
      this.logger?.error('corrupt CNI cache record moved aside; its network cannot be torn down', {
        podId,
        file: moved,
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  private async removeCache(podId: string): Promise<void> {
    await fsp.rm(this.cachePath(podId), { force: true });
  }

  private async run(
    command: CniCommand,
    rec: CacheRecord,
    plugin: PluginConf,
    netns: string,
    prevResult: unknown,
  ): Promise<unknown> {
    const binary = await findPlugin(plugin.type, this.binDirs);
    if (!binary)
      throw new CniPluginError(
        plugin.type,
        command,
        undefined,
        `binary not found in ${this.binDirs.join(', ')}`,
      );
    const started = Date.now();
    const t0 = process.hrtime.bigint();
    const out = await execPlugin({
      binary,
      command,
      containerId: rec.podId,
      netns,
      ifName: rec.ifName,
      cniArgs: buildCniArgs(rec.podId, rec.pod),
      binDirs: this.binDirs,
      conf: buildPluginConf(rec.config, plugin, rec.capabilityArgs, prevResult),
      timeoutMs: this.timeoutMs,
    }).then(
      (r) => (metrics.cniPlugin(command, plugin.type, secondsSince(t0), true), r),
      (err: unknown) => {
        metrics.cniPlugin(command, plugin.type, secondsSince(t0), false);
        throw err;
      },
    );
    this.logger?.debug('CNI plugin ran', {
      plugin: plugin.type,
      command,
      podId: rec.podId,
      ms: Date.now() - started,
    });
    return out;
  }

  /** DEL through every plugin in reverse order; all are tried, failures collected. */
  private async delAll(
    rec: CacheRecord,
    netnsHint: string | undefined,
    prevResult: unknown,
  ): Promise<CniPluginError[]> {
    const p = netnsHint ?? rec.netns;
    // A namespace that is gone is passed as empty: plugins then release what lives outside it.
    const netns = p && (await isNsPinned(p)) ? p : '';
    // Before 0.4.0 DEL got no prevResult.
    const prev = compareVersions(rec.config.cniVersion, '0.4.0') >= 0 ? prevResult : undefined;
    const failures: CniPluginError[] = [];
    for (const plugin of [...rec.config.plugins].reverse()) {
      try {
        await this.run('DEL', rec, plugin, netns, prev);
      } catch (err) {
        failures.push(err as CniPluginError);
      }
    }
    return failures;
  }

  /**
   * CNI ADD for a pod: runs the loaded config's plugins in order, chaining results. On failure
   * the plugins that may have done something are DELeted before the error is thrown.
   */
  async setUp(
    podId: string,
    netnsPath: string,
    pod: PodRef,
    args: CapabilityArgs = {},
  ): Promise<SetUpResult> {
    validateContainerId(podId);
    buildCniArgs(podId, pod);
    if (!path.isAbsolute(netnsPath))
      throw invalidArgument(`network namespace path ${short(netnsPath)} is not absolute`);
    const capabilityArgs = validateCapabilityArgs(args);
    if (!capabilityArgs.ipRanges?.length && this.podRanges.length) capabilityArgs.ipRanges = this.podRanges;
    const t0 = process.hrtime.bigint();
    const op = this.locks.run(podId, async () => {
      if (this.loaded && this.missingPlugins.length) await this.checkMissingPlugins();
      const st = this.status();
      const loaded = this.loaded;
      if (!st.ready || !loaded) throw failedPrecondition(`network is not ready: ${st.reason ?? 'no config'}`);
      const existing = await this.readCache(podId);
      if (existing?.state === 'added')
        throw alreadyExists(`network of pod sandbox ${short(podId)} is already set up`);
      if (existing) {
        // A half-done ADD of an earlier attempt: release it first.
        const failures = await this.delAll(existing, undefined, existing.result);
        if (failures.length) throw new CniTeardownError(podId, failures);
      }
      const rec: CacheRecord = {
        version: 1,
        podId,
        state: 'adding',
        netns: netnsPath,
        ifName: this.ifName,
        pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
        capabilityArgs,
        file: loaded.file,
        config: loaded.config,
        updatedAt: new Date().toISOString(),
      };
      await atomicWriteJson(this.cachePath(podId), rec);
      let prev: unknown;
      let result: CniResult;
      try {
        for (const plugin of loaded.config.plugins)
          prev = await this.run('ADD', rec, plugin, netnsPath, prev);
        try {
          result = parseCniResult(prev, loaded.config.cniVersion);
        } catch (err) {
          throw new BerthError(
            Status.INTERNAL,
            `CNI ADD for pod sandbox ${short(podId)}: ${(err as Error).message}`,
          );
        }
      } catch (err) {
        const failures = await this.delAll(rec, netnsPath, prev);
        if (failures.length) {
          this.logger?.error('cleanup after failed CNI ADD failed; kept for retry', {
            podId,
            errors: failures.map((f) => f.message),
          });
        } else {
          await this.removeCache(podId);
        }
        throw err;
      }
      rec.state = 'added';
      rec.result = prev;
      rec.updatedAt = new Date().toISOString();
      await atomicWriteJson(this.cachePath(podId), rec);
      return { ips: podIPs(result, this.ifName), result, network: loaded.config.name };
    });
    return metrics.cniOperation('ADD', t0, op);
  }

  /**
   * CNI DEL for a pod with the config, args and ADD result it was set up with. Idempotent: a pod
   * without a record has nothing to tear down. Throws CniTeardownError when a plugin fails (the
   * record is kept; call again later).
   */
  async tearDown(podId: string, netnsPath?: string): Promise<void> {
    validateContainerId(podId);
    const t0 = process.hrtime.bigint();
    const op = this.locks.run(podId, async () => {
      const rec = await this.readCache(podId);
      if (!rec) return;
      const failures = await this.delAll(rec, netnsPath, rec.result);
      if (failures.length) throw new CniTeardownError(podId, failures);
      await this.removeCache(podId);
    });
    await metrics.cniOperation('DEL', t0, op);
  }

  /** CNI CHECK of a set-up pod (skipped for configs before 0.4.0 or with disableCheck). */
  async check(podId: string, netnsPath?: string): Promise<void> {
    validateContainerId(podId);
    await this.locks.run(podId, async () => {
      const rec = await this.readCache(podId);
      if (!rec || rec.state !== 'added') throw notFound(`pod sandbox ${short(podId)} has no network set up`);
      if (compareVersions(rec.config.cniVersion, '0.4.0') < 0 || rec.config.disableCheck) return;
      const netns = netnsPath ?? rec.netns;
      if (!(await isNsPinned(netns))) throw failedPrecondition(`network namespace ${short(netns)} is gone`);
      for (const plugin of rec.config.plugins) await this.run('CHECK', rec, plugin, netns, rec.result);
    });
  }

  /** What the record of one pod says; undefined when it has no network state. */
  async cached(podId: string): Promise<CachedNetwork | undefined> {
    validateContainerId(podId);
    const rec = await this.readCache(podId);
    return rec && this.summary(rec);
  }

  /** Every pod with network state on disk: set up, or with a teardown still to do. */
  async listCached(): Promise<CachedNetwork[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.cacheDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: CachedNetwork[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json') || n.includes(TMP_MARK)) continue;
      const podId = n.slice(0, -5);
      try {
        validateContainerId(podId);
      } catch {
        continue;
      }
      const rec = await this.readCache(podId);
      if (rec) out.push(this.summary(rec));
    }
    return out;
  }

  private summary(rec: CacheRecord): CachedNetwork {
    let ips: string[] = [];
    if (rec.result !== undefined) {
      try {
        ips = podIPs(parseCniResult(rec.result, rec.config.cniVersion), rec.ifName);
      } catch {
        // a result we could not read at ADD time would have failed ADD; leave ips empty
      }
    }
    return { podId: rec.podId, state: rec.state, netns: rec.netns, network: rec.config.name, ips };
  }
}
