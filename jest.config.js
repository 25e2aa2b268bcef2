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
};
