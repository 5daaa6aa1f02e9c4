// What berthd loads at start (README, "Daemon memory"): not proto-loader or winston, and not the
// streaming session code (ws, SPDY, exec, attach) until the first streaming connection.
const mockLoaded = new Set<string>();
jest.mock('ws', () => {
  mockLoaded.add('ws');
  return jest.requireActual('ws');
});
jest.mock('@grpc/proto-loader', () => {
  mockLoaded.add('@grpc/proto-loader');
  return jest.requireActual('@grpc/proto-loader');
});
// winston is no longer a dependency: a virtual mock catches any require of it that comes back
jest.mock(
  'winston',
  () => {
    mockLoaded.add('winston');
    return {};
  },
  { virtual: true },
);

describe('modules berthd loads', () => {
  it('the daemon and its gRPC server load neither proto-loader, winston nor ws', () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    // what cmd/berthd/main.ts imports (requiring it would run berthd)
    require('../../internal/config/config');
    require('../../internal/log');
    require('../../internal/daemon');
    require('../../internal/server/server');
    require('../../internal/streaming/server');
    expect([...mockLoaded]).toEqual([]);
  });

  it('the streaming session code, required on the first upgrade, brings ws', () => {
    require('../../internal/streaming/sessions');
    /* eslint-enable @typescript-eslint/no-require-imports */
    expect([...mockLoaded]).toEqual(['ws']);
  });
});
