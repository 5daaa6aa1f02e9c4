// An image store over a real overlay snapshotter in `root`, as berthd opens it (but every layer,
// however small, unpacks in the built unpack worker), for tests that drive internal/image
// directly; and the status a rejected call ended with.
import { join } from 'node:path';
import { defaultConfig, type Config } from '../../internal/config/config';
import { isBerthError } from '../../internal/errors';
import { silentLogger } from '../../internal/log';
import { LocalImageStore } from '../../internal/image/store';
import { OverlaySnapshotter } from '../../internal/snapshot/overlay';
import { REPO_ROOT, assertBuilt } from './berthd';

/** The built unpack worker: tests run from TypeScript sources, the worker thread from dist/. */
export function builtUnpackWorker(): string {
  assertBuilt();
  return join(REPO_ROOT, 'dist', 'internal', 'image', 'unpack-worker.js');
}

export async function openLabStore(
  root: string,
  patch: (c: Config) => void = () => undefined,
): Promise<{ store: LocalImageStore; snap: OverlaySnapshotter; config: Config }> {
  const log = silentLogger();
  const config = defaultConfig();
  config.root = root;
  patch(config);
  const snap = new OverlaySnapshotter({ root: join(root, 'snapshots'), log });
  await snap.init();
  const store = new LocalImageStore({
    root,
    config,
    snapshotter: snap,
    log,
    // every layer through the worker, however small, so these tests cover that path
    unpack: { script: builtUnpackWorker(), minWorkerBytes: 0 },
  });
  await store.init();
  return { store, snap, config };
}

/** The code and message a BerthError rejection carried (throws if `p` resolves). */
export async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isBerthError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected the promise to reject');
}
