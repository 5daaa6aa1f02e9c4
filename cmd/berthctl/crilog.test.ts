import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  follow,
  LineSplitter,
  LogDecoder,
  LogReader,
  parseDuration,
  parseLogLine,
  parseSince,
  type LogRecord,
} from './crilog';

const T = (s: number): string => `2024-05-01T12:00:${String(s).padStart(2, '0')}.123456789Z`;

describe('parseLogLine', () => {
  it('splits time, stream, tag and text', () => {
    expect(parseLogLine(`${T(1)} stdout F hello world`)).toEqual({
      time: T(1),
      stream: 'stdout',
      partial: false,
      text: 'hello world',
    });
    expect(parseLogLine(`${T(1)} stderr P  two  spaces `)).toEqual({
      time: T(1),
      stream: 'stderr',
      partial: true,
      text: ' two  spaces ',
    });
    expect(parseLogLine(`${T(1)} stdout F`)).toMatchObject({ text: '' });
  });
  it('rejects what is not CRI format', () => {
    expect(parseLogLine('hello')).toBeUndefined();
    expect(parseLogLine(`${T(1)} stdin F x`)).toBeUndefined();
    expect(parseLogLine(`${T(1)} stdout X x`)).toBeUndefined();
  });
});

describe('LogDecoder', () => {
  it('joins P lines per stream until F, keeping the first time', () => {
    const d = new LogDecoder();
    const got = [
      `${T(1)} stdout P abc`,
      `${T(2)} stderr P err-`,
      `${T(3)} stdout P def`,
      `${T(4)} stderr F end`,
      `${T(5)} stdout F ghi`,
      `${T(6)} stdout F next`,
    ]
      .map((l) => d.line(l))
      .filter((r) => r);
    expect(got).toEqual([
      { time: T(2), stream: 'stderr', text: 'err-end', complete: true },
      { time: T(1), stream: 'stdout', text: 'abcdefghi', complete: true },
      { time: T(6), stream: 'stdout', text: 'next', complete: true },
    ]);
  });
  it('flushes unterminated partials, oldest first', () => {
    const d = new LogDecoder();
    d.line(`${T(3)} stdout P late`);
    d.line(`${T(2)} stderr P early`);
    expect(d.flush()).toEqual([
      { time: T(2), stream: 'stderr', text: 'early', complete: false },
      { time: T(3), stream: 'stdout', text: 'late', complete: false },
    ]);
    expect(d.flush()).toEqual([]);
  });
  it('passes a foreign line through as stdout', () => {
    expect(new LogDecoder().line('plain text')).toEqual({
      time: '',
      stream: 'stdout',
      text: 'plain text',
      complete: true,
    });
  });
});

describe('LineSplitter', () => {
  it('holds an unterminated line until its newline arrives, across multi-byte characters', () => {
    const s = new LineSplitter();
    const euro = Buffer.from('€');
    expect(s.push(Buffer.concat([Buffer.from('a\nb'), euro.subarray(0, 1)]))).toEqual(['a']);
    expect(s.push(Buffer.concat([euro.subarray(1), Buffer.from('c\n\nd')]))).toEqual(['b€c', '']);
    s.reset();
    expect(s.push(Buffer.from('e\n'))).toEqual(['e']);
  });
});

describe('durations and --since', () => {
  it('parses Go durations', () => {
    expect(parseDuration('90s')).toBe(90000);
    expect(parseDuration('1h30m')).toBe(5400000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5')).toBeUndefined();
    expect(parseDuration('5m garbage')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
  it('parses relative and absolute times', () => {
    expect(parseSince('10s', 100000)).toBe(90000);
    expect(parseSince('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(() => parseSince('yesterday')).toThrow(/--since/);
  });
});

describe('LogReader', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'berthctl-crilog-'));
    file = path.join(dir, '0.log');
  });
  afterEach(async () => {
    await fs.promises.rm(dir, { recursive: true, force: true });
  });

  const lines = (n: number, from = 0): string =>
    Array.from(
      { length: n },
      (_, i) => `${T(from + i)} ${i % 2 ? 'stderr' : 'stdout'} F line${from + i}\n`,
    ).join('');

  it('reads all, the last N, or those since a time', async () => {
    await fs.promises.writeFile(file, lines(6) + `${T(7)} stdout P unfinished`);
    const read = async (tail: number, sinceMs?: number): Promise<string[]> => {
      const got: LogRecord[] = [];
      const r = new LogReader(file, (x) => got.push(x));
      expect(await r.readInitial({ tail, sinceMs })).toBe(true);
      r.flushPartial();
      r.close();
      return got.map((x) => `${x.stream}:${x.text}${x.complete ? '' : '…'}`);
    };
    expect(await read(-1)).toEqual([
      'stdout:line0',
      'stderr:line1',
      'stdout:line2',
      'stderr:line3',
      'stdout:line4',
      'stderr:line5',
    ]);
    expect(await read(2)).toEqual(['stdout:line4', 'stderr:line5']);
    expect(await read(0)).toEqual([]);
    expect(await read(-1, Date.parse(T(4)))).toEqual(['stdout:line4', 'stderr:line5']);
    // Until its newline arrives the P line is held by the splitter; then it shows as partial.
    await fs.promises.appendFile(file, `\n`);
    expect(await read(1)).toEqual(['stderr:line5', 'stdout:unfinished…']);
  });

  it('says when the file is missing', async () => {
    const r = new LogReader(file, () => undefined);
    expect(await r.readInitial({ tail: -1 })).toBe(false);
    r.close();
  });

  it('follows appends, a rotation (rename + new file) and a truncation until the container stops', async () => {
    await fs.promises.writeFile(file, lines(2));
    const got: string[] = [];
    const r = new LogReader(file, (x) => got.push(x.text));
    await r.readInitial({ tail: -1 });
    let running = true;
    const done = follow(r, {
      signal: new AbortController().signal,
      isRunning: async () => running,
      pollMs: 20,
      statusMs: 30,
    });
    const waitFor = async (text: string): Promise<void> => {
      for (let i = 0; i < 200 && !got.includes(text); i++) await new Promise((res) => setTimeout(res, 10));
      expect(got).toContain(text);
    };
    await fs.promises.appendFile(file, lines(1, 2));
    await waitFor('line2');
    // kubelet's rotation: rename, the old file may still get a last write, then a new file.
    await fs.promises.rename(file, `${file}.20240501`);
    await fs.promises.appendFile(`${file}.20240501`, lines(1, 3));
    await waitFor('line3');
    await fs.promises.writeFile(file, lines(2, 4));
    await waitFor('line5');
    // copytruncate-style rotation.
    await fs.promises.truncate(file, 0);
    await new Promise((res) => setTimeout(res, 60));
    await fs.promises.appendFile(file, `${T(9)} stdout F after-truncate\n`);
    await waitFor('after-truncate');
    await fs.promises.appendFile(file, `${T(9)} stdout F last words\n`);
    running = false;
    await done;
    r.close();
    expect(got).toEqual([
      'line0',
      'line1',
      'line2',
      'line3',
      'line4',
      'line5',
      'after-truncate',
      'last words',
    ]);
  });

  it('waits for a log file that does not exist yet, and stops on abort', async () => {
    const got: string[] = [];
    const r = new LogReader(file, (x) => got.push(x.text));
    expect(await r.readInitial({ tail: -1 })).toBe(false);
    const ac = new AbortController();
    const done = follow(r, { signal: ac.signal, isRunning: async () => true, pollMs: 20 });
    await fs.promises.writeFile(file, lines(1));
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
    ac.abort();
    await done;
    r.close();
    expect(got).toEqual(['line0']);
  });
});
