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

export type RuncErrorKind = 'not-found' | 'not-running' | 'wrong-state' | 'invalid' | 'other';

/**
 * What the caller got wrong when runc (or crun) refuses a container or exec for a reason in the
 * request itself: a command the image does not have, a sysctl the pod's namespaces do not have, or
 * a value the kernel refuses for one. undefined for anything else (Berth's or the host's fault).
 */
export function callerFault(message: string): string | undefined {
  const exec =
    /exec: "([^"]*)": (stat [^:]*: no such file or directory|executable file not found in \$PATH|permission denied|is a directory)|executable file `([^`]*)` not found/.exec(
      message,
    );
  if (exec) return `the command ${JSON.stringify(exec[1] ?? exec[3])} cannot be run in the container`;
  const sysctlMissing = /open `?\/proc\/sys\/([^:`]*)`?: no such file or directory/i.exec(message);
  if (sysctlMissing)
    return `sysctl ${sysctlMissing[1].replace(/\//g, '.')} does not exist in the pod's namespaces`;
  const sysctlValue =
    /write `?\/proc\/sys\/([^:`]*)`?: (invalid argument|numerical result out of range)/i.exec(message);
  if (sysctlValue) return `the kernel refuses the value of sysctl ${sysctlValue[1].replace(/\//g, '.')}`;
  return undefined;
}

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
  if (callerFault(message)) return 'invalid';
  return 'other';
}

/** A runc command that failed: NOT_FOUND for an unknown container, FAILED_PRECONDITION for one in
 * the wrong state (not running, still running, not paused), INVALID_ARGUMENT for a request runc
 * refuses (see callerFault), INTERNAL otherwise. */
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
          : kind === 'invalid'
            ? Status.INVALID_ARGUMENT
            : Status.INTERNAL,
      kind === 'invalid'
        ? `runc ${command}: ${callerFault(runcMessage)} (${runcMessage})`
        : `runc ${command}: ${runcMessage || 'failed'}`,
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
