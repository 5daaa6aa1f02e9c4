// The pid files runc (--pid-file) and conmon (--conmon-pidfile) write: read, trimmed, checked.
import { promises as fsp } from 'node:fs';

/** The pid in `file`; undefined when the file is missing, empty or holds no positive integer. */
export async function readPidFile(file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await fsp.readFile(file, 'utf8')).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
