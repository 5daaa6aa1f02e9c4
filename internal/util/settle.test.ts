import { allOrFirstError } from './settle';

test('allOrFirstError gives every value in order, or throws the first failure once all have settled', async () => {
  expect(await allOrFirstError([Promise.resolve(1), 'two', undefined])).toEqual([1, 'two', undefined]);
  let slowDone = false;
  const slow = new Promise<void>((r) =>
    setTimeout(() => {
      slowDone = true;
      r();
    }, 20),
  );
  await expect(
    allOrFirstError([slow, Promise.reject(new Error('first')), Promise.reject(new Error('second'))]),
  ).rejects.toThrow('first');
  expect(slowDone).toBe(true); // Promise.all would have thrown before this step ended
});
