import { silentLogger } from '../log';
import { exposedGc, ReliefPolicy, startMemoryRelief } from './memory-relief';

test('ReliefPolicy: due once grown above the floor and at rest; a relief that cannot get back moves the floor', () => {
  const p = new ReliefPolicy(100, 10);
  expect(p.due(1000)).toBe(false); // first sample: the floor
  expect(p.due(1099)).toBe(false);
  expect(p.due(1150)).toBe(false); // grown but still moving
  expect(p.due(1300)).toBe(false);
  expect(p.due(1305)).toBe(true); // at rest
  p.relieved(1020); // back near the floor: the floor stays
  expect(p.due(1025)).toBe(false);
  expect(p.due(1120)).toBe(false);
  expect(p.due(1121)).toBe(true);
  p.relieved(1118); // memory really in use: new floor, no relief every interval
  expect(p.due(1119)).toBe(false);
  expect(p.due(1119)).toBe(false);
  expect(p.due(900)).toBe(false); // lower: new floor
  expect(p.due(1000)).toBe(false);
  expect(p.due(1001)).toBe(true);
});

test('startMemoryRelief relieves on growth only', async () => {
  let rss = 1000;
  let calls = 0;
  const r = startMemoryRelief(silentLogger(), {
    intervalMs: 5,
    growthKb: 100,
    rssKb: () => rss,
    relieve: () => {
      calls++;
      rss -= 150;
    },
  });
  await new Promise((res) => setTimeout(res, 40));
  expect(calls).toBe(0);
  rss = 1200; // then steady: one relief
  await new Promise((res) => setTimeout(res, 60));
  r.stop();
  expect(calls).toBe(1);
});

test('exposedGc gives a working gc() with the last-resort flavour', () => {
  expect(() => exposedGc()({ type: 'major', execution: 'sync', flavor: 'last-resort' })).not.toThrow();
});
