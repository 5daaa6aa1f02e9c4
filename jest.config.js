// Two projects: unit tests (pure logic, no root or system packages needed) and integration tests
// (real registry, runc, conmon, CNI; run serially because they share the machine's kernel state).
const transform = { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: [
        '<rootDir>/internal/**/*.test.ts',
        '<rootDir>/cmd/**/*.test.ts',
        '<rootDir>/test/unit/**/*.test.ts',
      ],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
  ],
  testTimeout: 120000,
};
