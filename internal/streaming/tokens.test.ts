import { TokenCache } from './tokens';

test('a token is consumed by its first use', () => {
  const c = new TokenCache<string>(1000);
  const t = c.insert('a');
  expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(c.consume(t)).toBe('a');
  expect(c.consume(t)).toBeUndefined();
  expect(c.consume('nope')).toBeUndefined();
});

test('an unused token expires after the ttl', () => {
  let now = 0;
  const c = new TokenCache<number>(60_000, () => now);
  const t1 = c.insert(1);
  const t2 = c.insert(2);
  now = 59_999;
  expect(c.consume(t1)).toBe(1);
  now = 60_000;
  expect(c.consume(t2)).toBeUndefined();
  c.insert(3);
  expect(c.size).toBe(1);
});

test('tokens are distinct', () => {
  const c = new TokenCache<number>();
  const seen = new Set(Array.from({ length: 1000 }, (_, i) => c.insert(i)));
  expect(seen.size).toBe(1000);
});
