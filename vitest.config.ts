import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/system/**', 'node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files run in parallel workers, but heavy JPEG work inside a file stays serial.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
