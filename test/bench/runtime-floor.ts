// The floor under CreateContainer + StartContainer on this machine, measured in the pods bench's
// own run so that the two can be compared: `runc create` + `runc start` of a prepared busybox bundle
// (runc's default spec, as issue #15 measures the floor), and the same create with conmon in front,
// started and awaited by Berth's own code (spawnConmon: conmon's sync pipe and its first process's
// exit), as Berth and CRI-O run containers. Every process is made by Berth's spawner (posix_spawn
// from the native addon), so the figures carry no fork of the bench's process. The two ways
// alternate, so a drift of the machine affects both alike.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { conmonCreateArgs } from '../../internal/runtime/conmon-args';
import { spawnConmon } from '../../internal/runtime/conmon';
import { RuntimePaths } from '../../internal/runtime/paths';
import { runtimeEnv } from '../../internal/runtime/runc';
import { resolveCommand, spawnProcess } from '../../internal/util/spawn';
import { busyboxEntries } from '../lab/images';

export interface FloorTimings {
  runcCreate: number[];
  runcStart: number[];
  conmonCreate: number[];
  conmonStart: number[];
}

/**
 * Runs `file args` to its exit; rejects with its stderr when it fails. Its stderr goes to a file, not
 * a pipe: `runc create` hands its stdio to the container, which would hold a pipe open.
 */
function run(file: string, args: string[], errFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = fs.openSync(errFile, 'w');
    // the fd is handed over when the spawn happens (on a thread-pool thread): closed at the end
    const p = spawnProcess(file, args, { stdio: ['ignore', 'ignore', fd], env: runtimeEnv() });
    let open = true;
    const settle = (err?: Error): void => {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
      if (err) reject(err);
      else resolve();
    };
    p.on('error', settle);
    p.on('exit', (code: number | null) => {
      if (code === 0) return settle();
      const text = fs.readFileSync(errFile, 'utf8').trim();
      settle(new Error(`${file} ${args.join(' ')}: ${text || `exit ${code}`}`));
    });
  });
}

/** A bundle of runc's default spec (`runc spec`) whose process sleeps, on a busybox rootfs. */
async function prepareBundle(runc: string, dir: string): Promise<string> {
  const bundle = path.join(dir, 'bundle');
  const rootfs = path.join(bundle, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  for (const e of busyboxEntries()) {
    const p = path.join(rootfs, e.path);
    if (e.type === 'dir') fs.mkdirSync(p, { recursive: true, mode: e.mode ?? 0o755 });
    else if (e.type === 'symlink') fs.symlinkSync(e.linkname!, p);
    else fs.writeFileSync(p, e.content ?? '', { mode: e.mode ?? 0o644 });
  }
  await run(runc, ['spec', '--bundle', bundle], path.join(dir, 'stderr'));
  const file = path.join(bundle, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    process: { terminal: boolean; args: string[] };
  };
  spec.process.terminal = false;
  spec.process.args = ['/bin/sleep', '3600'];
  fs.writeFileSync(file, JSON.stringify(spec));
  return bundle;
}

/**
 * `runs` creates and starts each way (alternating), each container deleted before the next. The
 * runc state, pid files and conmon's files live in a temporary dir, removed at the end.
 */
export async function measureRuntimeFloor(runs: number): Promise<FloorTimings> {
  const runc = resolveCommand('runc');
  const conmon = resolveCommand('conmon');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-floor-'));
  const root = path.join(dir, 'runc');
  const paths = new RuntimePaths(path.join(dir, 'state'));
  for (const d of [paths.exitsDir, paths.pidsDir, paths.socketsDir, paths.persistRoot])
    fs.mkdirSync(d, { recursive: true });
  const out: FloorTimings = { runcCreate: [], runcStart: [], conmonCreate: [], conmonStart: [] };
  const live = new Set<string>();
  const errFile = path.join(dir, 'stderr');
  try {
    const bundle = await prepareBundle(runc, dir);
    for (let i = 0; i < runs; i++) {
      for (const way of ['runc', 'conmon'] as const) {
        const id = `berth-floor-${process.pid}-${way}-${i}`;
        live.add(id);
        const t0 = performance.now();
        if (way === 'runc') {
          await run(
            runc,
            ['--root', root, 'create', '--bundle', bundle, '--pid-file', path.join(dir, `${id}.pid`), id],
            errFile,
          );
        } else {
          fs.mkdirSync(paths.persistDir(id), { recursive: true });
          const args = conmonCreateArgs({
            runtimePath: runc,
            runtimeRoot: root,
            paths,
            create: { id, bundle, logPath: path.join(dir, `${id}.log`), cgroupsPath: '' },
          });
          const r = await spawnConmon(conmon, args, paths.persistDir(id), 30_000);
          if (!r.ok) throw new Error(`conmon: ${r.message}`);
        }
        const t1 = performance.now();
        await run(runc, ['--root', root, 'start', id], errFile);
        const t2 = performance.now();
        (way === 'runc' ? out.runcCreate : out.conmonCreate).push(t1 - t0);
        (way === 'runc' ? out.runcStart : out.conmonStart).push(t2 - t1);
        await run(runc, ['--root', root, 'delete', '--force', id], errFile);
        live.delete(id);
      }
    }
  } finally {
    for (const id of live)
      await run(runc, ['--root', root, 'delete', '--force', id], errFile).catch(() => undefined);
    // conmon's monitors end with their containers; give the last one a moment to write its exit file
    await new Promise((r) => setTimeout(r, 200));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
