// Local ConfigMaps and Secrets for `berthctl play --config-dir DIR`:
//   DIR/configmaps/<name>/<key>   one file per key (the file's content is the value)
//   DIR/secrets/<name>/<key>      the same for Secrets (plain values, not base64)
// Names and keys are the file names; dot files and subdirectories are ignored.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigSource } from './volumes';

function readObject(dir: string | undefined, kind: string, name: string): Record<string, string> | undefined {
  if (!dir || !name || name.includes('/') || name.startsWith('.')) return undefined;
  const d = path.join(dir, kind, name);
  let names: string[];
  try {
    names = fs.readdirSync(d);
  } catch {
    return undefined;
  }
  const data: Record<string, string> = {};
  for (const n of names.sort()) {
    if (n.startsWith('.')) continue;
    const p = path.join(d, n);
    if (fs.statSync(p).isFile()) data[n] = fs.readFileSync(p, 'utf8');
  }
  return data;
}

export function configDirSource(dir: string | undefined): ConfigSource {
  return {
    configMap: (name) => readObject(dir, 'configmaps', name),
    secret: (name) => readObject(dir, 'secrets', name),
  };
}
