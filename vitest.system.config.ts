import { defineConfig } from 'vitest/config';

// The system suite (`npm run test:system`): tests that need Debian packages (mosquitto, openssl,
// chromium). `.ci/run` installs them and runs this suite after `npm test`; a missing binary fails.
export default defineConfig({
  test: {
    include: ['test/system/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files run in parallel workers, but heavy JPEG work inside a file stays serial.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
