// Output helpers for berthctl: aligned tables like crictl's, JSON and YAML, sizes and ages.
import * as YAML from 'yaml';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}${units[i]}`;
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** The same document as YAML (`-o yaml`): the JSON form's values, so the two always agree. */
export function yaml(value: unknown): string {
  return YAML.stringify(JSON.parse(JSON.stringify(value)) as unknown);
}

/** A document in the `-o` format asked for: json or yaml. */
export function encode(value: unknown, output: string | undefined): string {
  return output === 'yaml' ? yaml(value) : json(value);
}

/** Short id as crictl prints it: the hex without the algorithm, 13 characters. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 13);
}

/** An age like "5 minutes ago" from int64 nanoseconds since the epoch (as a string). */
export function ago(nanos: string | undefined, now = Date.now()): string {
  if (!nanos || nanos === '0') return '';
  const s = Math.max(0, Math.floor((now - Number(BigInt(nanos) / 1_000_000n)) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

/** A pod or container id as crictl's tables show it: 13 characters unless --no-trunc. */
export function truncId(id: string, noTrunc = false): string {
  return noTrunc ? id : id.slice(0, 13);
}

/**
 * int64 nanoseconds since the epoch (decimal string) as RFC 3339 with nanoseconds, trailing
 * zeros of the fraction trimmed like Go's RFC3339Nano; "" for 0 or missing.
 */
export function rfc3339Nano(nanos: string | undefined): string {
  if (!nanos || nanos === '0') return '';
  const n = BigInt(nanos);
  let secs = n / 1_000_000_000n;
  let frac = n % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    secs -= 1n;
  }
  const base = new Date(Number(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  const f = frac.toString().padStart(9, '0').replace(/0+$/, '');
  return f ? `${base}.${f}Z` : `${base}Z`;
}

/** Verbose `info` maps carry JSON documents as strings; show them as JSON where they parse. */
export function parseInfo(info: Record<string, string>): Record<string, unknown> {
  const outInfo: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    try {
      outInfo[k] = JSON.parse(v);
    } catch {
      outInfo[k] = v;
    }
  }
  return outInfo;
}

/** CRI state enum names as crictl prints them. */
export function stateName(state: string): string {
  switch (state) {
    case 'SANDBOX_READY':
      return 'Ready';
    case 'SANDBOX_NOTREADY':
      return 'NotReady';
    case 'CONTAINER_CREATED':
      return 'Created';
    case 'CONTAINER_RUNNING':
      return 'Running';
    case 'CONTAINER_EXITED':
      return 'Exited';
    case 'CONTAINER_UNKNOWN':
      return 'Unknown';
    default:
      return state;
  }
}
