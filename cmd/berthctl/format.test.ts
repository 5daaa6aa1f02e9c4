import { parseInfo, rfc3339Nano, stateName, table, truncId } from './format';

describe('format helpers', () => {
  it('rfc3339Nano keeps nanoseconds and trims zeros like Go', () => {
    expect(rfc3339Nano('1700000000123456789')).toBe('2023-11-14T22:13:20.123456789Z');
    expect(rfc3339Nano('1700000000100000000')).toBe('2023-11-14T22:13:20.1Z');
    expect(rfc3339Nano('1700000000000000000')).toBe('2023-11-14T22:13:20Z');
    expect(rfc3339Nano('0')).toBe('');
    expect(rfc3339Nano(undefined)).toBe('');
  });
  it('truncId', () => {
    expect(truncId('0123456789abcdef')).toBe('0123456789abc');
    expect(truncId('0123456789abcdef', true)).toBe('0123456789abcdef');
  });
  it('stateName', () => {
    expect(
      ['SANDBOX_READY', 'SANDBOX_NOTREADY', 'CONTAINER_CREATED', 'CONTAINER_EXITED', 'X'].map(stateName),
    ).toEqual(['Ready', 'NotReady', 'Created', 'Exited', 'X']);
  });
  it('parseInfo parses JSON values and keeps the rest', () => {
    expect(parseInfo({ a: '{"x":1}', b: 'plain', c: '3' })).toEqual({ a: { x: 1 }, b: 'plain', c: 3 });
  });
  it('table aligns columns', () => {
    expect(table(['A', 'BB'], [['xxx', 'y']])).toBe('A     BB\nxxx   y\n');
  });
});
