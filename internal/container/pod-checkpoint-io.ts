// Reading and writing a pod checkpoint directory (format: ./pod-checkpoint.ts). The checks of the
// caller's paths come first, so bad input is INVALID_ARGUMENT / NOT_FOUND before anything else.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';
import { invalidArgument, notFound, short } from '../errors';
import { atomicWriteJson, fsyncDir } from '../util/fs';
import { MANIFEST_FILE, parseManifest, type PodCheckpointManifest } from './pod-checkpoint';

/** CheckpointPodRequest.output_path: an absolute path to an existing, empty directory. */
export async function checkOutputDir(p: string): Promise<void> {
  if (!p || !path.isAbsolute(p)) throw invalidArgument(`output_path ${short(p)} must be an absolute path`);
  const st = await fsp.stat(p).catch(() => undefined);
  if (!st) throw invalidArgument(`output_path ${short(p)} does not exist (the caller creates it)`);
  if (!st.isDirectory()) throw invalidArgument(`output_path ${short(p)} is not a directory`);
  const entries = await fsp.readdir(p);
  if (entries.length)
    throw invalidArgument(`output_path ${short(p)} is not empty (has ${short(entries[0])})`);
}

export interface PodCheckpoint {
  dir: string;
  manifest: PodCheckpointManifest;
  podConfig: PodSandboxConfig__Output;
  /** in manifest order */
  containerConfigs: ContainerConfig__Output[];
}

async function readJson(dir: string, rel: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, rel), 'utf8');
  } catch (err) {
    throw invalidArgument(
      `checkpoint ${short(dir)}: cannot read ${rel} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw invalidArgument(`checkpoint ${short(dir)}: ${rel} is not JSON`);
  }
}

/**
 * Reads RestorePodRequest.checkpoint_path without changing it: INVALID_ARGUMENT for a relative path
 * or a directory that is not a readable Berth pod checkpoint, NOT_FOUND when it does not exist.
 */
export async function readPodCheckpoint(dir: string): Promise<PodCheckpoint> {
  if (!dir || !path.isAbsolute(dir))
    throw invalidArgument(`checkpoint_path ${short(dir)} must be an absolute path`);
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st) throw notFound(`checkpoint_path ${short(dir)} does not exist`);
  if (!st.isDirectory()) throw invalidArgument(`checkpoint_path ${short(dir)} is not a directory`);
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch {
    throw invalidArgument(
      `checkpoint_path ${short(dir)} has no ${MANIFEST_FILE}: not a Berth pod checkpoint`,
    );
  }
  const manifest = parseManifest(text);
  const podConfig = (await readJson(dir, manifest.pod.config)) as PodSandboxConfig__Output;
  const containerConfigs: ContainerConfig__Output[] = [];
  for (const c of manifest.containers) {
    containerConfigs.push((await readJson(dir, c.config)) as ContainerConfig__Output);
    const a = await fsp.stat(path.join(dir, c.archive)).catch(() => undefined);
    if (!a?.isFile()) throw invalidArgument(`checkpoint ${short(dir)}: ${c.archive} is missing`);
  }
  return { dir, manifest, podConfig, containerConfigs };
}

/**
 * Writes the JSON files of a checkpoint whose container archives are already in `dir`: the configs,
 * then the manifest (atomically, last: a directory without it is not a checkpoint).
 */
export async function writePodCheckpointFiles(
  dir: string,
  manifest: PodCheckpointManifest,
  podConfig: PodSandboxConfig__Output,
  containerConfigs: ContainerConfig__Output[],
): Promise<void> {
  await atomicWriteJson(path.join(dir, manifest.pod.config), podConfig);
  for (const [n, c] of manifest.containers.entries()) {
    await fsp.mkdir(path.dirname(path.join(dir, c.config)), { recursive: true });
    await atomicWriteJson(path.join(dir, c.config), containerConfigs[n]);
  }
  await atomicWriteJson(path.join(dir, MANIFEST_FILE), manifest);
  await fsyncDir(dir);
}
