// berthd's configuration: defaults, the config file (JSON or TOML), drop-ins, then flags.
// Every key is documented in deploy/config.toml (the default config, annotated) and validated here
// at start; a bad value stops the daemon with a message that names the key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../log';
import { parseListenAddress } from '../metrics/server';

export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64("user:pass"), as in a docker config.json */
  auth?: string;
  identity_token?: string;
}

export interface RuntimeHandlerConfig {
  /** path to the OCI runtime binary */
  path: string;
  /** --root directory of that runtime's state; default <state>/runtime/<name> */
  root?: string;
}

export interface Config {
  root: string;
  state: string;
  socket: string;
  log_level: LogLevel;
  log_format: LogFormat;
  /** warn when a 10 s window's p99 event-loop delay passes this many ms */
  event_loop_warn_ms: number;
  /** host:port of the Prometheus /metrics endpoint; '' (default) serves none */
  metrics_address: string;
  pause_image: string;
  registry: {
    insecure: string[];
    mirrors: Record<string, string[]>;
    auths: Record<string, RegistryAuth>;
  };
  image: {
    platform: string;
    max_concurrent_downloads: number;
    /**
     * keep no layer blob once its layer is unpacked (containerd's discard_unpacked_layers; CRI-O
     * keeps none): a layer streams from the registry through its digest check into its snapshot
     */
    discard_unpacked_layers: boolean;
    /** worker threads that unpack layers off the event loop (0: unpack in the main thread) */
    unpack_workers: number;
    pull_progress_timeout_seconds: number;
    pull_progress_min_bytes_per_second: number;
    /** bounds on what a registry can make berthd read or unpack (see README, "Image integrity") */
    max_manifest_bytes: number;
    max_config_bytes: number;
    max_layer_uncompressed_bytes: number;
    max_image_uncompressed_bytes: number;
    /** refuse a layer that expands to more than this many times its compressed size; 0 = off */
    max_layer_compression_ratio: number;
  };
  cni: {
    conf_dir: string;
    bin_dirs: string[];
  };
  runtime: {
    conmon_path: string;
    default_runtime: string;
    runtimes: Record<string, RuntimeHandlerConfig>;
    cgroup_driver: 'cgroupfs' | 'systemd';
    /** where each conmon goes once started: "pod" (a leaf beside the pod's containers) or a cgroup */
    conmon_cgroup: string;
    restrict_oom_score_adj: 'auto' | boolean;
    /** ExecSync through berth-exec instead of `runc exec` for runc containers (README: ExecSync) */
    native_exec: boolean;
    /**
     * run pods without an infra (pause) container where none is needed (CRI-O's drop_infra_ctr):
     * their IPC and UTS namespaces are pinned as files, as the network one always is
     */
    drop_infra_ctr: boolean;
  };
  streaming: {
    address: string;
    port: number;
    tls_cert: string;
    tls_key: string;
    idle_timeout_seconds: number;
  };
  stats: {
    /** how often the background walker measures every container snapshot's disk use */
    disk_usage_refresh_seconds: number;
  };
}

export const DEFAULT_CONFIG_PATHS = ['/etc/berth/config.toml', '/etc/berth/config.json'];
export const DEFAULT_DROP_IN_DIR = '/etc/berth/config.d';

export function defaultConfig(): Config {
  return {
    root: '/var/lib/berth',
    state: '/run/berth',
    socket: '/run/berth/berth.sock',
    log_level: 'info',
    log_format: 'text',
    event_loop_warn_ms: 100,
    metrics_address: '',
    pause_image: 'registry.k8s.io/pause:3.10',
    registry: { insecure: ['localhost', '127.0.0.1', '[::1]'], mirrors: {}, auths: {} },
    image: {
      platform: 'linux/amd64',
      max_concurrent_downloads: 3,
      discard_unpacked_layers: true,
      unpack_workers: 1,
      pull_progress_timeout_seconds: 300,
      pull_progress_min_bytes_per_second: 1,
      max_manifest_bytes: 4 * 1024 * 1024,
      max_config_bytes: 32 * 1024 * 1024,
      max_layer_uncompressed_bytes: 50 * 1024 ** 3,
      max_image_uncompressed_bytes: 100 * 1024 ** 3,
      max_layer_compression_ratio: 1000,
    },
    cni: { conf_dir: '/etc/cni/net.d', bin_dirs: ['/opt/cni/bin', '/usr/lib/cni'] },
    runtime: {
      conmon_path: '/usr/bin/conmon',
      default_runtime: 'runc',
      // crun is installed with berth's dependencies (scripts/install-deps.sh)
      runtimes: { runc: { path: '/usr/sbin/runc' }, crun: { path: '/usr/bin/crun' } },
      cgroup_driver: 'cgroupfs',
      conmon_cgroup: 'pod',
      restrict_oom_score_adj: 'auto',
      native_exec: true,
      drop_infra_ctr: true,
    },
    streaming: { address: '127.0.0.1', port: 0, tls_cert: '', tls_key: '', idle_timeout_seconds: 4 * 3600 },
    stats: { disk_usage_refresh_seconds: 10 },
  };
}

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a config file's text by its extension. */
export function parseConfigText(text: string, file: string): Obj {
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    throw new ConfigError(file, `cannot parse: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isObj(data)) throw new ConfigError(file, 'the top level must be a table/object');
  return data;
}

/**
 * Merges `src` over `dst` key by key, checking each key exists in the defaults and has the default's
 * type. Maps whose keys are free (registry mirrors/auths, runtimes) are taken whole.
 */
const FREE_MAPS = new Set(['registry.mirrors', 'registry.auths', 'runtime.runtimes']);

function mergeChecked(dst: Obj, src: Obj, prefix: string): void {
  for (const [k, v] of Object.entries(src)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (!(k in dst)) throw new ConfigError(key, 'unknown key');
    const cur = dst[k];
    if (FREE_MAPS.has(key)) {
      if (!isObj(v)) throw new ConfigError(key, 'must be a table/object');
      dst[k] = { ...(cur as Obj), ...v };
    } else if (isObj(cur)) {
      if (!isObj(v)) throw new ConfigError(key, 'must be a table/object');
      mergeChecked(cur, v, key);
    } else if (Array.isArray(cur)) {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
        throw new ConfigError(key, 'must be a list of strings');
      dst[k] = v;
    } else if (key === 'runtime.restrict_oom_score_adj') {
      if (v !== 'auto' && typeof v !== 'boolean') throw new ConfigError(key, 'must be true, false or "auto"');
      dst[k] = v;
    } else {
      if (typeof v !== typeof cur)
        throw new ConfigError(key, `must be a ${typeof cur}, got ${JSON.stringify(v)}`);
      dst[k] = v;
    }
  }
}

export function validate(c: Config): Config {
  const abs = (key: string, p: string): void => {
    if (!path.isAbsolute(p)) throw new ConfigError(key, `must be an absolute path, got ${JSON.stringify(p)}`);
  };
  abs('root', c.root);
  abs('state', c.state);
  abs('socket', c.socket);
  abs('cni.conf_dir', c.cni.conf_dir);
  c.cni.bin_dirs.forEach((d, i) => abs(`cni.bin_dirs[${i}]`, d));
  abs('runtime.conmon_path', c.runtime.conmon_path);
  if (!LOG_LEVELS.includes(c.log_level))
    throw new ConfigError('log_level', `must be one of ${LOG_LEVELS.join(', ')}`);
  if (c.log_format !== 'text' && c.log_format !== 'json')
    throw new ConfigError('log_format', 'must be "text" or "json"');
  if (!c.pause_image) throw new ConfigError('pause_image', 'must not be empty');
  if (!/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9_]+)?$/.test(c.image.platform))
    throw new ConfigError('image.platform', 'must look like os/arch or os/arch/variant');
  const posInt = (key: string, n: number): void => {
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(key, 'must be a positive integer');
  };
  posInt('image.max_concurrent_downloads', c.image.max_concurrent_downloads);
  if (!Number.isInteger(c.image.unpack_workers) || c.image.unpack_workers < 0)
    throw new ConfigError('image.unpack_workers', 'must be a non-negative integer');
  posInt('image.pull_progress_timeout_seconds', c.image.pull_progress_timeout_seconds);
  if (!(c.image.pull_progress_min_bytes_per_second >= 0))
    throw new ConfigError('image.pull_progress_min_bytes_per_second', 'must be >= 0');
  for (const k of [
    'max_manifest_bytes',
    'max_config_bytes',
    'max_layer_uncompressed_bytes',
    'max_image_uncompressed_bytes',
  ] as const)
    if (!Number.isSafeInteger(c.image[k]) || c.image[k] < 1024)
      throw new ConfigError(`image.${k}`, 'must be an integer number of bytes >= 1024');
  if (!(Number.isFinite(c.image.max_layer_compression_ratio) && c.image.max_layer_compression_ratio >= 0))
    throw new ConfigError('image.max_layer_compression_ratio', 'must be >= 0 (0 turns the check off)');
  for (const [host, eps] of Object.entries(c.registry.mirrors)) {
    if (!Array.isArray(eps) || !eps.every((e) => typeof e === 'string' && /^https?:\/\/[^/]+/.test(e)))
      throw new ConfigError(`registry.mirrors.${host}`, 'must be a list of http:// or https:// endpoints');
  }
  for (const [host, a] of Object.entries(c.registry.auths)) {
    if (!isObj(a)) throw new ConfigError(`registry.auths.${host}`, 'must be a table/object');
    for (const [k, v] of Object.entries(a)) {
      if (!['username', 'password', 'auth', 'identity_token'].includes(k))
        throw new ConfigError(`registry.auths.${host}.${k}`, 'unknown key');
      if (typeof v !== 'string') throw new ConfigError(`registry.auths.${host}.${k}`, 'must be a string');
    }
  }
  if (c.runtime.cgroup_driver !== 'cgroupfs' && c.runtime.cgroup_driver !== 'systemd')
    throw new ConfigError('runtime.cgroup_driver', 'must be "cgroupfs" or "systemd"');
  const cc = c.runtime.conmon_cgroup;
  if (cc !== 'pod') {
    if (c.runtime.cgroup_driver === 'systemd' ? !/^[A-Za-z0-9_.\-:@]+\.slice$/.test(cc) : !isCgroupPath(cc))
      throw new ConfigError(
        'runtime.conmon_cgroup',
        c.runtime.cgroup_driver === 'systemd'
          ? `must be "pod" or a systemd slice name like "system.slice", got ${JSON.stringify(cc)}`
          : `must be "pod" or an absolute cgroup path like "/berth-conmon", got ${JSON.stringify(cc)}`,
      );
  }
  for (const [name, r] of Object.entries(c.runtime.runtimes)) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name))
      throw new ConfigError(`runtime.runtimes.${name}`, 'handler names are [a-zA-Z0-9_.-], at most 63 chars');
    if (!isObj(r) || typeof r.path !== 'string')
      throw new ConfigError(`runtime.runtimes.${name}.path`, 'is required');
    abs(`runtime.runtimes.${name}.path`, r.path);
  }
  if (!(c.runtime.default_runtime in c.runtime.runtimes))
    throw new ConfigError('runtime.default_runtime', `names no entry of runtime.runtimes`);
  if (!Number.isInteger(c.streaming.port) || c.streaming.port < 0 || c.streaming.port > 65535)
    throw new ConfigError('streaming.port', 'must be 0..65535');
  if (Boolean(c.streaming.tls_cert) !== Boolean(c.streaming.tls_key))
    throw new ConfigError('streaming.tls_cert', 'tls_cert and tls_key go together');
  posInt('streaming.idle_timeout_seconds', c.streaming.idle_timeout_seconds);
  if (!(Number.isFinite(c.event_loop_warn_ms) && c.event_loop_warn_ms > 0))
    throw new ConfigError('event_loop_warn_ms', 'must be a number of milliseconds > 0');
  posInt('stats.disk_usage_refresh_seconds', c.stats.disk_usage_refresh_seconds);
  if (c.metrics_address && !parseListenAddress(c.metrics_address))
    throw new ConfigError(
      'metrics_address',
      `must be host:port (e.g. "127.0.0.1:9338") or "", got ${JSON.stringify(c.metrics_address)}`,
    );
  return c;
}

/** An absolute cgroup path of plain names: no "..", no empty parts. */
function isCgroupPath(p: string): boolean {
  return (
    /^\/[A-Za-z0-9_.@:-]+(\/[A-Za-z0-9_.@:-]+)*$/.test(p) &&
    !p.split('/').some((x) => x === '..' || x === '.')
  );
}

export interface ConfigOverrides {
  socket?: string;
  root?: string;
  state?: string;
  log_level?: string;
}

/**
 * Loads the effective config: defaults, then `file` (or the first default path that exists), then
 * `<file>.d/*.toml|json` drop-ins in name order, then the flag overrides. When --state is given but
 * --socket is not, the socket follows the state dir.
 */
export function loadConfig(file: string | undefined, overrides: ConfigOverrides = {}): Config {
  const cfg = defaultConfig();
  const files: string[] = [];
  const main = file ?? DEFAULT_CONFIG_PATHS.find((p) => fs.existsSync(p));
  if (file && !fs.existsSync(file)) throw new ConfigError(file, 'config file does not exist');
  if (main) files.push(main);
  // drop-ins: <config>.d/ next to the file in use, or /etc/berth/config.d when there is none
  const dropDir = main ? `${main.replace(/\.(toml|json)$/, '')}.d` : DEFAULT_DROP_IN_DIR;
  if (fs.existsSync(dropDir)) {
    for (const n of fs.readdirSync(dropDir).sort()) {
      if (/\.(toml|json)$/.test(n)) files.push(path.join(dropDir, n));
    }
  }
  let socketSet = false;
  for (const f of files) {
    const data = parseConfigText(fs.readFileSync(f, 'utf8'), f);
    if ('socket' in data) socketSet = true;
    try {
      mergeChecked(cfg as unknown as Obj, data, '');
    } catch (err) {
      if (err instanceof ConfigError)
        throw new ConfigError(err.key, `${err.message.replace(/^config: [^:]+: /, '')} (in ${f})`);
      throw err;
    }
  }
  if (overrides.root) cfg.root = overrides.root;
  if (overrides.state) {
    cfg.state = overrides.state;
    if (!socketSet && !overrides.socket) cfg.socket = path.join(overrides.state, 'berth.sock');
  }
  if (overrides.socket) cfg.socket = overrides.socket;
  if (overrides.log_level) cfg.log_level = overrides.log_level as LogLevel;
  return validate(cfg);
}
