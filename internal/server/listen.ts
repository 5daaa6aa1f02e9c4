// The daemon's unix socket: parent dir created, a stale socket left by a dead daemon replaced, a
// live daemon on the same path refused, mode 0660 once bound.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** True when something accepts connections on the unix socket `p`. */
export function socketIsLive(p: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    const done = (live: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(live);
    };
    const t = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Makes `socketPath` ready to bind; throws a clear error when another daemon holds it. */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o711 });
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  if (await socketIsLive(socketPath)) {
    throw new Error(`another daemon is already serving on ${socketPath}; stop it or pass --socket`);
  }
  fs.unlinkSync(socketPath);
}
