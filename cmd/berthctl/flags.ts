// Flag parsing shared by berthctl's pod and container commands.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Transport } from '../../internal/streaming/client';
import { UsageError } from './common';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs with the command's usage line on any parse error (unknown flag, missing value), so
 * a wrong invocation exits 2 with the usage instead of a stack of Node's wording.
 */
export function parseFlags<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${usage}\n${(e as Error).message}`);
  }
}

/** A non-negative integer flag value; `undefined` when the flag was not given. */
export function intFlag(value: string | undefined, name: string, usage: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`${usage}\n--${name} wants a non-negative integer, got ${value}`);
  return Number(value);
}

/** `--label k=v` (repeatable) as a label selector; a value may itself contain '='. */
export function parseLabels(labels: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw new UsageError(`--label wants key=value, got ${JSON.stringify(l)}`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** A regular expression from a --name/--namespace filter, with a clear error when it is not one. */
export function regexFlag(value: string | undefined, name: string): RegExp | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    return new RegExp(value);
  } catch (e) {
    throw new UsageError(`--${name}: invalid regular expression: ${(e as Error).message}`);
  }
}

export interface ExecArgs {
  sync: boolean;
  interactive: boolean;
  tty: boolean;
  timeout: number;
  /** how -i/-t sessions reach the streaming server */
  transport: Transport;
  id: string;
  cmd: string[];
}

export type { Transport };

export const EXEC_USAGE =
  'exec [-i|--interactive] [-t|--tty] [--transport spdy|websocket] [-s|--sync] [--timeout SECONDS] ' +
  'CONTAINER-ID COMMAND [ARG...]';

/** --transport's value, checked. */
export function transportFlag(v: string | undefined, usage: string): Transport {
  if (v === 'spdy' || v === 'websocket') return v;
  throw new UsageError(`${usage}
--transport wants spdy or websocket, got ${JSON.stringify(v ?? '')}`);
}

/**
 * exec's arguments: flags stop at the container id, so the command's own flags (`sh -c ...`,
 * `ls -la`) pass through untouched; `--` also ends the flags.
 */
export function parseExecArgs(argv: string[]): ExecArgs {
  const r: ExecArgs = {
    sync: false,
    interactive: false,
    tty: false,
    timeout: 0,
    transport: 'spdy',
    id: '',
    cmd: [],
  };
  let i = 0;
  const bool = (ch: string): void => {
    if (ch === 's') r.sync = true;
    else if (ch === 'i') r.interactive = true;
    else if (ch === 't') r.tty = true;
    else throw new UsageError(`${EXEC_USAGE}\nunknown flag -${ch}`);
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    if (a === '--sync') r.sync = true;
    else if (a === '--interactive') r.interactive = true;
    else if (a === '--tty') r.tty = true;
    else if (a === '--timeout' || a.startsWith('--timeout=')) {
      const v = a === '--timeout' ? argv[++i] : a.slice('--timeout='.length);
      r.timeout = intFlag(v ?? '', 'timeout', EXEC_USAGE) ?? 0;
    } else if (a === '--transport' || a.startsWith('--transport=')) {
      r.transport = transportFlag(
        a === '--transport' ? argv[++i] : a.slice('--transport='.length),
        EXEC_USAGE,
      );
    } else if (a.startsWith('--')) throw new UsageError(`${EXEC_USAGE}\nunknown flag ${a}`);
    else for (const ch of a.slice(1)) bool(ch);
  }
  r.id = argv[i] ?? '';
  r.cmd = argv.slice(i + 1);
  if (!r.id || r.cmd.length === 0) throw new UsageError(EXEC_USAGE);
  return r;
}

/** The flags `pods` and `ps` share: filters, output shape and how many of the newest to keep. */
export const LIST_OPTIONS = {
  quiet: { type: 'boolean', short: 'q' },
  id: { type: 'string' },
  name: { type: 'string' },
  namespace: { type: 'string' },
  state: { type: 'string', short: 's' },
  label: { type: 'string', multiple: true },
  latest: { type: 'boolean', short: 'l' },
  last: { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o', default: 'table' },
  'no-trunc': { type: 'boolean' },
} as const;

/** `-o` of a list command: table, json or yaml. */
export function checkListOutput(output: string | undefined, usage: string): void {
  if (output !== 'table' && output !== 'json' && output !== 'yaml') {
    throw new UsageError(`${usage}\nunknown output format ${output} (table, json or yaml)`);
  }
}

/** `-o` of a command that prints a document: json (the default) or yaml. */
export const DOC_OUTPUT = { output: { type: 'string', short: 'o', default: 'json' } } as const;

export function checkDocOutput(output: string | undefined, usage: string): void {
  if (output !== 'json' && output !== 'yaml') {
    throw new UsageError(`${usage}\nunknown output format ${output} (json or yaml)`);
  }
}
