// Signal names and numbers (Linux, x86 and arm numbering) for the image's StopSignal and the CRI's
// Signal enum (ContainerConfig.stop_signal, ContainerStatus.stop_signal).
import { invalidArgument, short } from '../errors';
import type { ImageConfig } from '../image/types';

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGIOT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPOLL: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};
const SIGRTMIN = 34;
const SIGRTMAX = 64;

export interface StopSignal {
  /** canonical name, e.g. SIGTERM or SIGRTMIN+3 */
  name: string;
  number: number;
}

function nameOf(n: number): string {
  for (const [k, v] of Object.entries(SIGNALS))
    if (v === n && k !== 'SIGIOT' && k !== 'SIGPOLL' && k !== 'SIGCLD') return k;
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n === SIGRTMAX) return 'SIGRTMAX';
  return n - SIGRTMIN <= SIGRTMAX - n ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
}

/** Parses `SIGTERM`, `TERM`, `term`, `15`, `SIGRTMIN+3`; throws invalidArgument otherwise. */
export function parseSignal(value: string): StopSignal {
  const s = value.trim().toUpperCase();
  let n: number | undefined;
  if (/^[0-9]+$/.test(s)) {
    n = Number(s);
  } else {
    const name = s.startsWith('SIG') ? s : `SIG${s}`;
    const rt = /^SIGRT(MIN|MAX)(?:([+-])([0-9]+))?$/.exec(name);
    if (rt) {
      const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
      const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '-' ? -1 : 1);
      n = base + off;
    } else {
      n = SIGNALS[name];
    }
  }
  if (n === undefined || !Number.isInteger(n) || n < 1 || n > SIGRTMAX) {
    throw invalidArgument(`invalid signal ${short(value)}`);
  }
  return { name: nameOf(n), number: n };
}

/** The image's StopSignal, SIGTERM when it has none; throws invalidArgument for a bad one. */
export function stopSignalOf(image: ImageConfig | undefined): StopSignal {
  const s = image?.config?.StopSignal;
  return s ? parseSignal(s) : { name: 'SIGTERM', number: 15 };
}

/**
 * The signal a CRI Signal enum value names (SIGNAL_SIGUSR1 -> SIGUSR1, SIGNAL_SIGRTMINPLUS3 ->
 * SIGRTMIN+3, SIGNAL_SIGRTMAXMINUS2 -> SIGRTMAX-2); undefined for SIGNAL_RUNTIME_DEFAULT (or unset).
 * A value this proto does not know (a number) is INVALID_ARGUMENT.
 */
export function signalFromCri(value: string | number | null | undefined): StopSignal | undefined {
  if (
    value === undefined ||
    value === null ||
    value === '' ||
    value === 'SIGNAL_RUNTIME_DEFAULT' ||
    value === 0
  )
    return undefined;
  const m = typeof value === 'string' ? /^SIGNAL_(SIG[A-Z0-9]+)$/.exec(value) : null;
  if (!m) throw invalidArgument(`stop_signal ${short(value)} is not a signal this runtime knows`);
  const name = m[1]
    .replace(/^SIGRTMINPLUS(\d+)$/, 'SIGRTMIN+$1')
    .replace(/^SIGRTMAXMINUS(\d+)$/, 'SIGRTMAX-$1');
  return parseSignal(name);
}

/** The CRI Signal enum value of a signal name as parseSignal gives it (SIGRTMIN+3 -> SIGNAL_SIGRTMINPLUS3). */
export function signalToCri(name: string): string {
  const n = name
    .replace(/^SIGRTMIN\+(\d+)$/, 'SIGRTMINPLUS$1')
    .replace(/^SIGRTMAX-(\d+)$/, 'SIGRTMAXMINUS$1');
  return `SIGNAL_${n}`;
}

/** The effective stop signal: the container config's stop_signal, else the image's StopSignal, else SIGTERM. */
export function effectiveStopSignal(
  configured: string | number | null | undefined,
  image: ImageConfig | undefined,
): StopSignal {
  return signalFromCri(configured) ?? stopSignalOf(image);
}
