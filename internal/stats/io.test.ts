import { parseBlkio, parseIoStat, parsePressure, sumIo } from './io';

test('v2 io.stat per device', () => {
  expect(
    parseIoStat(
      '254:0 rbytes=4096 wbytes=1048576 rios=1 wios=256 dbytes=0 dios=0\n253:0 rbytes=0 wbytes=8\n',
    ),
  ).toEqual([
    { major: 254, minor: 0, readBytes: 4096n, writeBytes: 1048576n, reads: 1n, writes: 256n },
    { major: 253, minor: 0, readBytes: 0n, writeBytes: 8n, reads: 0n, writes: 0n },
  ]);
  expect(parseIoStat('')).toEqual([]);
});

test('v1 blkio.throttle bytes and ops', () => {
  const bytes =
    '254:0 Read 180224\n254:0 Write 4239360\n254:0 Sync 4419584\n254:0 Total 4419584\nTotal 4419584\n';
  const ops = '254:0 Read 3\n254:0 Write 5\n254:0 Total 8\nTotal 8\n';
  expect(parseBlkio(bytes, ops)).toEqual([
    { major: 254, minor: 0, readBytes: 180224n, writeBytes: 4239360n, reads: 3n, writes: 5n },
  ]);
  // nothing accounted yet
  expect(parseBlkio('Total 0\n', 'Total 0\n')).toEqual([]);
});

test('pressure files: some and full lines', () => {
  expect(
    parsePressure(
      'some avg10=1.50 avg60=0.25 avg300=0.00 total=2918\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n',
    ),
  ).toEqual({
    some: { total: 2918n, avg10: 1.5, avg60: 0.25, avg300: 0 },
    full: { total: 7n, avg10: 0, avg60: 0, avg300: 0 },
  });
  expect(parsePressure('')).toBeUndefined();
});

test('sums per device', () => {
  const a = { major: 8, minor: 0, readBytes: 1n, writeBytes: 2n, reads: 3n, writes: 4n };
  const b = { major: 8, minor: 16, readBytes: 5n, writeBytes: 5n, reads: 5n, writes: 5n };
  expect(sumIo([[a], [a, b]])).toEqual([
    { major: 8, minor: 0, readBytes: 2n, writeBytes: 4n, reads: 6n, writes: 8n },
    b,
  ]);
});
