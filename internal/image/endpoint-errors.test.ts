import { BerthError, Status } from '../errors';
import { RegistryError, combineEndpointFailures } from './endpoint-errors';

const unreachable = (code: string): RegistryError =>
  new RegistryError(Status.UNAVAILABLE, `GET x: ${code}`, `unreachable (${code})`, 'unreachable');
const notFound = new RegistryError(Status.NOT_FOUND, 'm/v2/x: not found', 'manifest unknown', 'definite');
const unauth = new RegistryError(Status.UNAUTHENTICATED, 'u/v2/x: unauthorized', 'unauthorized', 'definite');
const denied = new RegistryError(
  Status.PERMISSION_DENIED,
  'u/v2/x: access denied',
  'access denied',
  'definite',
);
const e503 = new RegistryError(
  Status.UNAVAILABLE,
  'm: registry error 503',
  'registry error 503',
  'transient',
);
const mirror = (error: unknown, base = 'http://127.0.0.1:5000') => ({
  label: `mirror ${base}`,
  mirror: true,
  error,
});
const up = (error: unknown) => ({ label: 'docker.io', mirror: false, error });

describe('combineEndpointFailures', () => {
  it('names every endpoint with its answer; NOT_FOUND when a reachable one said so', () => {
    const e = combineEndpointFailures('docker.io/library/nosuch:latest', [
      mirror(notFound),
      up(unreachable('ENOTFOUND')),
    ]);
    expect(e.code).toBe(Status.NOT_FOUND);
    expect(e.message).toBe(
      'docker.io/library/nosuch:latest: mirror http://127.0.0.1:5000: manifest unknown; docker.io: unreachable (ENOTFOUND)',
    );
  });

  it('UNAVAILABLE only when nothing was reached', () => {
    expect(
      combineEndpointFailures('r', [mirror(unreachable('ECONNREFUSED')), up(unreachable('ENOTFOUND'))]).code,
    ).toBe(Status.UNAVAILABLE);
    expect(combineEndpointFailures('r', [mirror(e503), up(unreachable('ENOTFOUND'))]).code).toBe(
      Status.UNAVAILABLE,
    );
  });

  it('auth failures keep their codes; the upstream answer wins over a mirror', () => {
    expect(combineEndpointFailures('r', [mirror(unreachable('ECONNREFUSED')), up(unauth)]).code).toBe(
      Status.UNAUTHENTICATED,
    );
    expect(combineEndpointFailures('r', [mirror(notFound), up(denied)]).code).toBe(Status.PERMISSION_DENIED);
    expect(combineEndpointFailures('r', [mirror(unauth), up(notFound)]).code).toBe(Status.NOT_FOUND);
    expect(combineEndpointFailures('r', [mirror(unauth), mirror(notFound, 'http://b'), up(e503)]).code).toBe(
      Status.UNAUTHENTICATED,
    );
  });

  it('other errors: DATA_LOSS is definite; one endpoint keeps its own error', () => {
    const bad = new BerthError(Status.DATA_LOSS, 'manifest x failed verification');
    const e = combineEndpointFailures('r', [mirror(bad), up(unreachable('ENOTFOUND'))]);
    expect(e.code).toBe(Status.DATA_LOSS);
    expect(e.message).toContain('mirror http://127.0.0.1:5000: manifest x failed verification');
    expect(combineEndpointFailures('r', [up(notFound)])).toBe(notFound);
  });
});
