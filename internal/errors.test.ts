import { status } from '@grpc/grpc-js';
import { BerthError, Status, isBerthError } from './errors';

test("Status is grpc-js's own status enum (imported from its constants module)", () => {
  expect(Status).toBe(status);
  expect(Status.FAILED_PRECONDITION).toBe(9);
});

test('isBerthError checks the code when given', () => {
  const e = new BerthError(Status.NOT_FOUND, 'x');
  expect(isBerthError(e)).toBe(true);
  expect(isBerthError(e, Status.NOT_FOUND)).toBe(true);
  expect(isBerthError(e, Status.INTERNAL)).toBe(false);
  expect(isBerthError(new Error('x'))).toBe(false);
});

test("errors.ts does not load grpc-js's index (the unpack worker thread imports it)", () => {
  jest.isolateModules(() => {
    jest.doMock('@grpc/grpc-js', () => {
      throw new Error("grpc-js's index was loaded");
    });
    expect(() => jest.requireActual<typeof import('./errors')>('./errors')).not.toThrow();
  });
});
