// Writing an OCI bundle: the directory (0700), its rootfs mount point and config.json (atomic).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJson } from '../util/fs';
import type { OciSpec } from './spec-types';

export const CONFIG_JSON = 'config.json';
export const ROOTFS_DIR = 'rootfs';

/** Creates `dir` (and `dir/rootfs`) if needed and writes `dir/config.json` atomically. */
export async function writeBundle(dir: string, spec: OciSpec): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await fsp.chmod(dir, 0o700);
  await fsp.mkdir(path.join(dir, ROOTFS_DIR), { recursive: true, mode: 0o755 });
  await atomicWriteJson(path.join(dir, CONFIG_JSON), spec);
}

/** Reads a bundle's config.json back (for ContainerStatus verbose info and recovery). */
export async function readBundleSpec(dir: string): Promise<OciSpec> {
  return JSON.parse(await fsp.readFile(path.join(dir, CONFIG_JSON), 'utf8')) as OciSpec;
}
