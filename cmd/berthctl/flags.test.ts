import { UsageError } from './common';
import { intFlag, parseExecArgs, parseFlags, parseLabels, regexFlag } from './flags';

describe('parseExecArgs', () => {
  it('stops at the container id so the command keeps its flags', () => {
    expect(parseExecArgs(['-s', '--timeout', '3', 'abc', 'ls', '-la', '--color'])).toEqual({
      sync: true,
      interactive: false,
      tty: false,
      timeout: 3,
      transport: 'spdy',
      id: 'abc',
      cmd: ['ls', '-la', '--color'],
    });
  });
  it('takes grouped short flags, --timeout=N and --', () => {
    expect(parseExecArgs(['-it', '--timeout=7', 'abc', 'sh'])).toMatchObject({
      interactive: true,
      tty: true,
      timeout: 7,
    });
    expect(parseExecArgs(['--', '-odd-id', 'true'])).toMatchObject({ id: '-odd-id', cmd: ['true'] });
  });
  it('takes --transport spdy|websocket in both spellings', () => {
    expect(parseExecArgs(['-i', '--transport', 'websocket', 'abc', 'cat'])).toMatchObject({
      interactive: true,
      transport: 'websocket',
      cmd: ['cat'],
    });
    expect(parseExecArgs(['--transport=spdy', 'abc', 'cat']).transport).toBe('spdy');
    expect(() => parseExecArgs(['--transport', 'http2', 'abc', 'cat'])).toThrow(/spdy or websocket/);
    expect(() => parseExecArgs(['--transport'])).toThrow(UsageError);
  });
  it.each([
    [[]],
    [['abc']],
    [['-x', 'abc', 'sh']],
    [['--bogus', 'abc', 'sh']],
    [['--timeout', 'soon', 'abc', 'sh']],
    [['--transport=', 'abc', 'sh']],
  ])('refuses %j', (argv) => {
    expect(() => parseExecArgs(argv)).toThrow(UsageError);
  });
});

describe('parseLabels', () => {
  it('splits at the first =', () => {
    expect(parseLabels(['a=b', 'c=d=e', 'empty='])).toEqual({ a: 'b', c: 'd=e', empty: '' });
    expect(parseLabels(undefined)).toEqual({});
  });
  it('refuses a label without key or =', () => {
    expect(() => parseLabels(['novalue'])).toThrow(/key=value/);
    expect(() => parseLabels(['=v'])).toThrow(/key=value/);
  });
});

describe('small parsers', () => {
  it('intFlag', () => {
    expect(intFlag(undefined, 'n', 'u')).toBeUndefined();
    expect(intFlag('12', 'n', 'u')).toBe(12);
    expect(() => intFlag('-1', 'n', 'u')).toThrow(/--n wants a non-negative integer/);
  });
  it('regexFlag', () => {
    expect(regexFlag('^a', 'name')?.test('abc')).toBe(true);
    expect(regexFlag('', 'name')).toBeUndefined();
    expect(() => regexFlag('[', 'name')).toThrow(UsageError);
  });
  it('parseFlags turns parse errors into usage errors', () => {
    expect(() => parseFlags(['--nope'], { a: { type: 'boolean' } }, 'cmd [-a]')).toThrow(
      /^cmd \[-a\]\nUnknown option '--nope'/,
    );
    expect(parseFlags(['-a', 'x'], { a: { type: 'boolean' } }, 'u')).toMatchObject({
      values: { a: true },
      positionals: ['x'],
    });
  });
});
