// Where berthctl connects, decided as crictl decides it, so one operator setup serves both tools:
// flag > environment > crictl's config file > default. The config file is crictl's YAML
// (`/etc/crictl.yaml`, or --config / $CRI_CONFIG_FILE) with runtime-endpoint, image-endpoint and
// timeout; the environment is $CONTAINER_RUNTIME_ENDPOINT and $IMAGE_SERVICE_ENDPOINT (and
// Berth's own $BERTH_ENDPOINT, below crictl's variable).
import * as fs from 'node:fs';
import * as YAML from 'yaml';
import { DEFAULT_ENDPOINT, UsageError } from './common';

export const DEFAULT_CONFIG_FILE = '/etc/crictl.yaml';
/** crictl's default connection timeout */
export const DEFAULT_TIMEOUT_SECONDS = 2;

export interface CrictlFile {
  runtimeEndpoint?: string;
  imageEndpoint?: string;
  timeoutSeconds?: number;
}

export interface Connection {
  runtimeEndpoint: string;
  /** the image service's endpoint; the runtime's when none is set */
  imageEndpoint: string;
  /** how long to wait for the endpoint to accept a connection */
  timeoutSeconds: number;
}

/**
 * A timeout as crictl takes it: seconds ("10") or a Go duration ("2s", "1m30s", "500ms");
 * undefined when it is not one.
 */
export function parseTimeout(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(s))) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
    end = re.lastIndex;
  }
  return end === s.length && end > 0 ? total : undefined;
}

/** Parses crictl.yaml text; unknown keys (debug, pull-image-on-create, ...) are ignored. */
export function parseCrictlYaml(text: string, file: string): CrictlFile {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new UsageError(`config file ${file}: not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new UsageError(`config file ${file}: expected a map of settings`);
  const d = doc as Record<string, unknown>;
  const out: CrictlFile = {};
  const str = (k: string): string | undefined => {
    const v = d[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new UsageError(`config file ${file}: ${k} must be a string`);
    return v;
  };
  out.runtimeEndpoint = str('runtime-endpoint');
  out.imageEndpoint = str('image-endpoint');
  if (d.timeout !== undefined && d.timeout !== null && d.timeout !== '') {
    const t = parseTimeout(d.timeout);
    if (t === undefined)
      throw new UsageError(`config file ${file}: timeout must be seconds or a duration like 10s`);
    out.timeoutSeconds = t;
  }
  return out;
}

/**
 * Reads the config file: the default one only if it exists; one named by --config or
 * $CRI_CONFIG_FILE must exist.
 */
export function readCrictlFile(flagPath: string | undefined, env: NodeJS.ProcessEnv): CrictlFile {
  const named = flagPath || env.CRI_CONFIG_FILE || '';
  const file = named || DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!named && code === 'ENOENT') return {};
    throw new UsageError(`cannot read config file ${file}: ${code ?? (e as Error).message}`);
  }
  return parseCrictlYaml(text, file);
}

export interface ConnectionFlags {
  runtimeEndpoint?: string;
  imageEndpoint?: string;
  timeout?: string;
}

/** Flag > environment > config file > default, for each setting on its own (as crictl). */
export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  file: CrictlFile,
): Connection {
  const runtimeEndpoint =
    flags.runtimeEndpoint ||
    env.CONTAINER_RUNTIME_ENDPOINT ||
    env.BERTH_ENDPOINT ||
    file.runtimeEndpoint ||
    DEFAULT_ENDPOINT;
  // crictl: with no image endpoint anywhere, the image service is on the runtime's endpoint.
  const imageEndpoint =
    flags.imageEndpoint || env.IMAGE_SERVICE_ENDPOINT || file.imageEndpoint || runtimeEndpoint;
  let timeoutSeconds = file.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (flags.timeout !== undefined) {
    const t = parseTimeout(flags.timeout);
    if (t === undefined)
      throw new UsageError(`--timeout wants seconds or a duration like 10s, got ${flags.timeout}`);
    timeoutSeconds = t;
  }
  // crictl: 0 or less means the default
  if (!(timeoutSeconds > 0)) timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
  return { runtimeEndpoint, imageEndpoint, timeoutSeconds };
}
