/** jest in ESM mode: Nest 12 is ESM-only. Run through `npm test` (node --experimental-vm-modules). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  collectCoverage: true,
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageReporters: ['text-summary', 'text'],
  coverageThreshold: {
    './lib/protocol/': { lines: 100, branches: 95 },
  },
  testTimeout: 20000,
  // Two workers on the two cores of CI: most suites wait on sockets, child processes and timers rather than on the
  // CPU, and one worker (jest's default here: cores - 1) took about ten minutes.
  maxWorkers: 2,
};
