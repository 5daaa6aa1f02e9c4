import { PhaseStats, Phases } from './phases';

const log = { debug: jest.fn() } as unknown as ConstructorParameters<typeof Phases>[2];

describe('Phases', () => {
  it('records each step once per operation, sums repeated marks, and adds the total', async () => {
    const stats = new PhaseStats();
    for (let i = 0; i < 3; i++) {
      const p = new Phases('Op', stats, log);
      await new Promise((r) => setTimeout(r, 5));
      p.mark('a');
      p.mark('b');
      await new Promise((r) => setTimeout(r, 5));
      p.mark('a');
      p.end(`id${i}`);
    }
    const s = stats.summary().Op;
    expect(Object.keys(s)).toEqual(['a', 'b', 'total']);
    expect(s.a.n).toBe(3);
    expect(s.a.p50).toBeGreaterThanOrEqual(8);
    expect(s.b.p50).toBeLessThan(s.a.p50);
    expect(s.total.p50).toBeGreaterThanOrEqual(s.a.p50);
  });
});
