// The checkpoint archive of a container, laid out like CRI-O's (what kubelet's forensic
// checkpointing and `crictl`/checkpointctl users expect to find):
//   checkpoint/        CRIU's image files (runc checkpoint --image-path)
//   dump.log           CRIU's log, when it wrote one
//   spec.dump          the container's OCI config.json
//   config.dump        Berth's container record (CRI config, image, user, resources)
//   rootfs-diff.tar    the writable layer's changes (the overlay upper dir, whiteouts included)
// Written to a temp file beside `location`, then renamed: a reader never sees half an archive.
// GNU tar does the packing: it keeps overlay whiteouts (0/0 char devices), xattrs (opaque dirs),
// hard links and sparse files right; a checkpoint is rare enough that the spawn does not matter.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { errMessage, internalError } from '../errors';
import { tempPathFor } from '../util/fs';
import { describeFailure, run, tool } from '../util/run';

export const CHECKPOINT_IMAGES = 'checkpoint';
export const SPEC_DUMP = 'spec.dump';
export const CONFIG_DUMP = 'config.dump';
export const ROOTFS_DIFF = 'rootfs-diff.tar';
export const DUMP_LOG = 'dump.log';

export interface ArchiveInput {
  /** where the archive goes (absolute); gzip when it ends in .gz or .tgz */
  location: string;
  /** scratch dir that already holds CHECKPOINT_IMAGES/ (and maybe DUMP_LOG) */
  workDir: string;
  /** the bundle's config.json */
  specFile: string;
  /** the container record, stored as config.dump */
  record: unknown;
  /** the snapshot's upper dir; undefined when the container has no writable layer */
  upperDir: string | undefined;
}

async function tar(args: string[]): Promise<void> {
  let r;
  try {
    r = await run(tool('tar'), args, { timeoutMs: 30 * 60_000, maxStdout: 1024 * 1024 });
  } catch (err) {
    throw internalError(`tar ${args.slice(0, 3).join(' ')}: ${errMessage(err)}`);
  }
  if (r.code !== 0) throw internalError(describeFailure(`tar ${args.slice(0, 3).join(' ')}`, r));
}

export async function writeCheckpointArchive(a: ArchiveInput): Promise<string[]> {
  const entries = [CHECKPOINT_IMAGES, SPEC_DUMP, CONFIG_DUMP, ROOTFS_DIFF];
  await fsp.copyFile(a.specFile, path.join(a.workDir, SPEC_DUMP));
  await fsp.writeFile(path.join(a.workDir, CONFIG_DUMP), JSON.stringify(a.record, null, 2));
  const diff = path.join(a.workDir, ROOTFS_DIFF);
  if (a.upperDir)
    await tar([
      '--xattrs',
      '--xattrs-include=trusted.*',
      '--numeric-owner',
      '-C',
      a.upperDir,
      '-cf',
      diff,
      '.',
    ]);
  else await tar(['-cf', diff, '--files-from', '/dev/null']);
  try {
    await fsp.access(path.join(a.workDir, DUMP_LOG));
    entries.push(DUMP_LOG);
  } catch {
    // CRIU wrote its log elsewhere
  }
  const gzip = /\.(t?gz)$/.test(a.location);
  const tmp = tempPathFor(a.location);
  try {
    await tar(['--numeric-owner', '-C', a.workDir, gzip ? '-czf' : '-cf', tmp, ...entries]);
    await fsp.rename(tmp, a.location);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  return entries;
}
