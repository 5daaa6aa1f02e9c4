// Pod and container config files in crictl's format: the CRI message as JSON or YAML with the
// proto's field names. Every field is checked against the proto so a typo is an error naming it,
// not a setting silently dropped; enum numbers become names, int64 become decimal strings.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import * as YAML from 'yaml';
import { protoPath } from '../../api/proto';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';

let root: protobuf.Root | undefined;

function messageType(name: string): protobuf.Type {
  if (!root) {
    root = new protobuf.Root().loadSync(protoPath(), { keepCase: true });
    root.resolveAll();
  }
  return root.lookupType(`runtime.v1.${name}`);
}

export class ConfigError extends Error {}

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** The field names a misspelt one most likely meant: same letters ignoring case and '_', or close. */
function suggest(name: string, fields: string[]): string {
  const norm = (s: string): string => s.toLowerCase().replace(/_/g, '');
  const exact = fields.find((f) => norm(f) === norm(name));
  if (exact) return ` (did you mean "${exact}"?)`;
  const n = norm(name);
  const prefix = n.length >= 3 && fields.find((f) => norm(f).startsWith(n) || n.startsWith(norm(f)));
  if (prefix) return ` (did you mean "${prefix}"?)`;
  let best = '';
  let bestD = 3;
  for (const f of fields) {
    const d = editDistance(norm(name), norm(f));
    if (d < bestD) [best, bestD] = [f, d];
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function scalar(v: unknown, type: string, resolved: protobuf.Enum | null, where: string): unknown {
  if (resolved) {
    if (typeof v === 'number' && Number.isInteger(v)) {
      const name = resolved.valuesById[v];
      if (name !== undefined) return name;
    } else if (typeof v === 'string' && v in resolved.values) return v;
    const names = Object.keys(resolved.values).join(', ');
    throw new ConfigError(`${where}: ${kind(v)} is not a ${resolved.name} (one of ${names}, or its number)`);
  }
  switch (type) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      break;
    case 'double':
    case 'float':
      if (typeof v === 'number') return v;
      break;
    case 'bytes':
      // Go's encoding/json (which crictl uses) takes bytes as base64.
      if (typeof v === 'string') return Buffer.from(v, 'base64');
      break;
    default: {
      const s =
        typeof v === 'number' && Number.isInteger(v) ? String(v) : typeof v === 'string' ? v : undefined;
      if (s === undefined || !/^-?\d+$/.test(s)) break;
      const n = BigInt(s);
      const unsigned = UINT32.has(type) || UINT64.has(type);
      if (unsigned && n < 0n) throw new ConfigError(`${where}: ${type} cannot be negative, got ${s}`);
      if (INT32.has(type) && (n < -(2n ** 31n) || n >= 2n ** 31n)) break;
      if (UINT32.has(type) && n >= 2n ** 32n) break;
      if (INT64.has(type) && (n < -(2n ** 63n) || n >= 2n ** 63n)) break;
      if (UINT64.has(type) && n >= 2n ** 64n) break;
      return INT64.has(type) || UINT64.has(type) ? n.toString() : Number(n);
    }
  }
  throw new ConfigError(`${where}: expected ${type}, got ${kind(v)}`);
}

function value(v: unknown, field: protobuf.Field, where: string): unknown {
  const t = field.resolvedType;
  // KeyValue.value (an environment variable's value) became bytes in cri-api's main line; in a
  // config file it stays what it means, text (UTF-8), not base64.
  if (field.parent?.name === 'KeyValue' && field.name === 'value' && typeof v === 'string')
    return Buffer.from(v, 'utf8');
  if (t instanceof protobuf.Type) return message(v, t, where);
  return scalar(v, field.type, t instanceof protobuf.Enum ? t : null, where);
}

/** Checks `v` against message type `type` and returns the request-ready object. */
function message(v: unknown, type: protobuf.Type, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ConfigError(`${where || 'top level'}: expected an object (${type.name}), got ${kind(v)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(v)) {
    const at = `${where}.${key}`;
    const field = type.fields[key];
    if (!field) {
      throw new ConfigError(
        `${at}: unknown field "${key}" in ${type.name}${suggest(key, Object.keys(type.fields))}`,
      );
    }
    if (raw === null || raw === undefined) continue; // YAML `key:` with nothing after it
    if (field instanceof protobuf.MapField) {
      if (typeof raw !== 'object' || Array.isArray(raw))
        throw new ConfigError(`${at}: expected a map, got ${kind(raw)}`);
      const m: Record<string, unknown> = {};
      for (const [k, mv] of Object.entries(raw as Record<string, unknown>))
        m[k] = value(mv, field, `${at}.${k}`);
      out[key] = m;
    } else if (field.repeated) {
      if (!Array.isArray(raw)) throw new ConfigError(`${at}: expected a list, got ${kind(raw)}`);
      out[key] = raw.map((item, i) => value(item, field, `${at}[${i}]`));
    } else {
      out[key] = value(raw, field, at);
    }
  }
  return out;
}

/** Parses config text by file name: `.json` as JSON, anything else as YAML (a superset of JSON). */
export function parseConfigText(text: string, fileName: string): unknown {
  const ext = path.extname(fileName).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text);
    const doc = YAML.parseDocument(text);
    if (doc.errors.length) throw new Error(doc.errors[0].message);
    return doc.toJS();
  } catch (e) {
    throw new ConfigError(
      `${fileName}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
}

/** Validates a parsed document as CRI message `typeName` (e.g. "PodSandboxConfig"). */
export function toMessage(doc: unknown, typeName: string): Record<string, unknown> {
  return message(doc, messageType(typeName), '');
}

async function load(file: string, typeName: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  try {
    return toMessage(parseConfigText(text, file), typeName);
  } catch (e) {
    if (e instanceof ConfigError && !e.message.startsWith(file))
      throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}

export async function loadPodConfig(file: string): Promise<PodSandboxConfig> {
  return (await load(file, 'PodSandboxConfig')) as PodSandboxConfig;
}

export async function loadContainerConfig(file: string): Promise<ContainerConfig> {
  return (await load(file, 'ContainerConfig')) as ContainerConfig;
}
