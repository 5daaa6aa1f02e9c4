// CNI network configuration: parsing and validating `.conflist` files and single-plugin `.conf` /
// `.json` files (wrapped into a list of one), and picking the one to use from a directory: the
// first valid file by name wins, invalid files are skipped with their reason.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** A plugin's JSON object exactly as written in the file (its `type` checked). */
export type PluginConf = { type: string } & Record<string, unknown>;

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  /** CHECK is skipped when true */
  disableCheck: boolean;
  plugins: PluginConf[];
}

export interface LoadedConfig {
  file: string;
  config: NetworkConfigList;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface DirLoadResult {
  loaded?: LoadedConfig;
  skipped: SkippedFile[];
  /** why nothing was loaded; set exactly when `loaded` is not */
  reason?: string;
}

/** cniVersion values whose configuration and result formats Berth understands. */
export const SUPPORTED_CNI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

export const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

const MAX_CONF_BYTES = 1 << 20;
// Network names become directory names (host-local's data dir) and cache keys.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
// Plugin types are file names looked up in the bin dirs: no path separators.
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class ConfError extends Error {}

function checkVersion(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfError(`${where}: cniVersion is missing`);
  if (!SUPPORTED_CNI_VERSIONS.includes(v))
    throw new ConfError(`${where}: cniVersion ${JSON.stringify(v).slice(0, 40)} is not supported`);
  return v;
}

function checkName(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfError(`${where}: name is missing`);
  if (!NAME_RE.test(v))
    throw new ConfError(`${where}: name ${JSON.stringify(v).slice(0, 40)} is not a valid network name`);
  return v;
}

function checkPlugin(v: unknown, i: number): PluginConf {
  if (!isObj(v)) throw new ConfError(`plugins[${i}] is not an object`);
  const t = v.type;
  if (typeof t !== 'string' || t === '') throw new ConfError(`plugins[${i}]: type is missing`);
  if (!TYPE_RE.test(t))
    throw new ConfError(`plugins[${i}]: type ${JSON.stringify(t).slice(0, 40)} is not a plugin name`);
  if (v.capabilities !== undefined && !isObj(v.capabilities))
    throw new ConfError(`plugins[${i}]: capabilities must be an object`);
  return v as PluginConf;
}

/** Validates an already parsed conflist object. Throws ConfError with the reason. */
export function parseConfList(data: unknown): NetworkConfigList {
  if (!isObj(data)) throw new ConfError('the top level is not a JSON object');
  const cniVersion = checkVersion(data.cniVersion, 'list');
  const name = checkName(data.name, 'list');
  if (!Array.isArray(data.plugins) || data.plugins.length === 0)
    throw new ConfError('plugins must be a non-empty list');
  if (data.disableCheck !== undefined && typeof data.disableCheck !== 'boolean')
    throw new ConfError('disableCheck must be a boolean');
  const plugins = data.plugins.map((p, i) => checkPlugin(p, i));
  return { cniVersion, name, disableCheck: data.disableCheck === true, plugins };
}

/** Validates a single-plugin config (a `.conf`) and wraps it into a list of one. */
export function parseSingleConf(data: unknown): NetworkConfigList {
  if (!isObj(data)) throw new ConfError('the top level is not a JSON object');
  // Some installers write a list into a .conf file; accept it as what it is.
  if (data.plugins !== undefined && data.type === undefined) return parseConfList(data);
  const cniVersion = checkVersion(data.cniVersion, 'conf');
  const name = checkName(data.name, 'conf');
  const plugin = checkPlugin(data, 0);
  return { cniVersion, name, disableCheck: false, plugins: [plugin] };
}

/** Parses a config file's text by its extension. Throws ConfError with the reason. */
export function parseConfText(text: string, file: string): NetworkConfigList {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfError(`invalid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return file.endsWith('.conflist') ? parseConfList(data) : parseSingleConf(data);
}

/** Config file names in `dir` in the order they are tried (sorted by name, like libcni). */
export function confFileNames(names: readonly string[]): string[] {
  return names
    .filter((n) => !n.startsWith('.') && CONF_EXTENSIONS.includes(path.extname(n)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Loads the first valid network config of `dir`. Never throws; reasons are in the result. */
export async function loadConfDir(dir: string): Promise<DirLoadResult> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      skipped: [],
      reason:
        e.code === 'ENOENT'
          ? `no network config found in ${dir} (directory missing)`
          : `cannot read ${dir}: ${e.message}`,
    };
  }
  const skipped: SkippedFile[] = [];
  for (const name of confFileNames(names)) {
    const file = path.join(dir, name);
    try {
      const st = await fsp.stat(file);
      if (!st.isFile()) throw new ConfError('not a regular file');
      if (st.size > MAX_CONF_BYTES) throw new ConfError(`larger than ${MAX_CONF_BYTES} bytes`);
      const config = parseConfText(await fsp.readFile(file, 'utf8'), file);
      return { loaded: { file, config }, skipped };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // A file removed between readdir and read is simply not there.
      if (e.code === 'ENOENT') continue;
      skipped.push({ file, reason: e instanceof ConfError ? e.message : `cannot read: ${e.message}` });
    }
  }
  const why = skipped.map((s) => `${path.basename(s.file)}: ${s.reason}`).join('; ');
  return {
    skipped,
    reason: skipped.length
      ? `no valid network config in ${dir} (${why})`
      : `no network config found in ${dir}`,
  };
}

/** Numeric comparison of dotted CNI versions: <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}
