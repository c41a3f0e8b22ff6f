// Unit tests of the model and the protocol handling: plain TypeScript, no DOM,
// no JupyterLab runtime (those are covered by tests/browser in the repository).
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: '__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  }
};
