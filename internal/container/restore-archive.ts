// Restoring one container from its CheckpointContainer archive (format: ./checkpoint.ts): the
// archive is unpacked into a directory of the new container, the CRIU images (checkpoint/) must be
// there, and the writable-layer changes (rootfs-diff.tar) are applied onto the new container's
// snapshot upper dir before runc restore. The argument builders are pure (unit-tested); the rest
// is a thin spawn of GNU tar, which keeps overlay whiteouts, xattrs and numeric owners.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { errMessage, internalError, invalidArgument, short } from '../errors';
import { describeFailure, run, tool } from '../util/run';
import { CHECKPOINT_IMAGES, ROOTFS_DIFF } from './checkpoint';

/** The runc restore options a Berth checkpoint needs, passed by conmon (--runtime-opt): it was
 * dumped with --file-locks, and CRIU restores locks only when asked. */
export const RUNC_RESTORE_OPTIONS: readonly string[] = ['--file-locks'];

/** tar arguments that unpack `archive` (plain or gzip: tar detects it) into `dir`. */
export function unpackArgs(archive: string, dir: string): string[] {
  return ['--numeric-owner', '-C', dir, '-xf', archive];
}

/** tar arguments that apply a rootfs diff onto an upper dir, whiteouts and opaque dirs included. */
export function applyDiffArgs(diff: string, upperDir: string): string[] {
  return ['--xattrs', '--xattrs-include=trusted.*', '--numeric-owner', '-C', upperDir, '-xf', diff];
}

/** Where a restored container's unpacked checkpoint lives, inside its bundle (removed with it). */
export const restoreDirOf = (bundle: string): string => path.join(bundle, 'restore');

async function tar(args: string[], what: string): Promise<void> {
  let r;
  try {
    r = await run(tool('tar'), args, { timeoutMs: 30 * 60_000, maxStdout: 1024 * 1024 });
  } catch (err) {
    throw internalError(`${what}: tar: ${errMessage(err)}`);
  }
  if (r.code !== 0) throw invalidArgument(describeFailure(`${what}: tar`, r));
}

/**
 * Unpacks `archive` into `dir` (created) and applies its rootfs diff onto `upperDir` (when the
 * container has a writable layer). Returns the CRIU image dir for conmon --restore.
 * INVALID_ARGUMENT when the archive is not a readable checkpoint archive or has no CRIU images.
 */
export async function unpackContainerCheckpoint(
  archive: string,
  dir: string,
  upperDir: string | undefined,
): Promise<string> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await tar(unpackArgs(archive, dir), `checkpoint archive ${short(archive)}`);
  const images = path.join(dir, CHECKPOINT_IMAGES);
  const st = await fsp.stat(images).catch(() => undefined);
  if (!st?.isDirectory())
    throw invalidArgument(`checkpoint archive ${short(archive)} has no ${CHECKPOINT_IMAGES}/ (CRIU images)`);
  const diff = path.join(dir, ROOTFS_DIFF);
  if (upperDir && (await fsp.stat(diff).catch(() => undefined))?.isFile()) {
    await tar(applyDiffArgs(diff, upperDir), `rootfs diff of ${short(archive)}`);
    await fsp.rm(diff, { force: true });
  }
  return images;
}
