// Turning runc's stderr into a short, useful error. runc logs through logrus, so a failure reads
// `time="..." level=error msg="runc create failed: ..."`; with --log-format json the same is a JSON
// line. Callers want the msg text, and want "does not exist" / "not running" told apart.
import { BerthError, Status } from '../errors';

const MAX_MESSAGE = 2000;

/** Decodes one Go %q-quoted string body (the part between the quotes). */
function unquoteGo(body: string): string {
  try {
    return JSON.parse(`"${body}"`) as string;
  } catch {
    // \x.. escapes are Go-only; keep the raw text rather than lose the message.
    return body.replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
}

/** The error of runc's own --log (JSON or text logrus lines): its error and fatal lines, '' when none. */
export function runcLogError(log: string): string {
  const errors = log
    .split('\n')
    .filter((l) => /"level":"(error|fatal)"|level=(error|fatal)/.test(l))
    .join('\n');
  return runcErrorMessage(errors);
}

/** The error messages in runc output (text or JSON logrus lines); falls back to the trimmed text. */
export function runcErrorMessage(output: string): string {
  const msgs: string[] = [];
  for (const line of output.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    if (t.startsWith('{')) {
      try {
        const rec = JSON.parse(t) as { level?: string; msg?: string };
        if ((rec.level === 'error' || rec.level === 'fatal') && rec.msg) msgs.push(rec.msg);
        continue;
      } catch {
        // not JSON after all
      }
    }
    const m = /level=(error|fatal) msg="((?:[^"\\]|\\.)*)"/.exec(t);
    if (m) msgs.push(unquoteGo(m[2]));
  }
  let text = msgs.length ? [...new Set(msgs)].join('; ') : output.trim();
  if (text.length > MAX_MESSAGE) text = `${text.slice(0, MAX_MESSAGE)}...`;
  return text;
}

export type RuncErrorKind = 'not-found' | 'not-running' | 'wrong-state' | 'other';

export function classifyRuncError(message: string): RuncErrorKind {
  if (/does not exist|container not found|no such container/i.test(message)) return 'not-found';
  // crun says it by failing to open the container's state: `error opening file `<root>/<id>/status`: ...`
  if (
    /(error opening file `[^`]*\/status`|cannot open directory [^:]*): No such file or directory/.test(
      message,
    )
  )
    return 'not-found';
  if (
    /not running|stopped container|container .* is stopped|already stopped|process already finished|kill container: No such process/i.test(
      message,
    )
  )
    return 'not-running';
  if (/not stopped|already running|not paused|already paused|has stopped/i.test(message))
    return 'wrong-state';
  return 'other';
}

/** A runc command that failed: NOT_FOUND for an unknown container, FAILED_PRECONDITION for one in
 * the wrong state (not running, still running, not paused), INTERNAL otherwise. */
export class RuncError extends BerthError {
  constructor(
    readonly command: string,
    readonly kind: RuncErrorKind,
    readonly runcMessage: string,
  ) {
    super(
      kind === 'not-found'
        ? Status.NOT_FOUND
        : kind === 'not-running'
          ? Status.FAILED_PRECONDITION
          : Status.INTERNAL,
      `runc ${command}: ${runcMessage || 'failed'}`,
    );
    this.name = 'RuncError';
  }
}

export function isRuncNotFound(err: unknown): boolean {
  return err instanceof RuncError && err.kind === 'not-found';
}

export function isRuncNotRunning(err: unknown): boolean {
  return err instanceof RuncError && err.kind === 'not-running';
}
