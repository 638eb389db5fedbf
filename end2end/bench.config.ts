// The browser half of `make bench`: the same servers as the end-to-end
// tests, but the measurements in ./bench, one at a time, with no retries.
// The benchmark binary runs it and reads the figures it writes.
import base from './playwright.config';
import { defineConfig } from '@playwright/test';

export default defineConfig({
  ...base,
  testDir: './bench',
  testMatch: '**/*.bench.ts',
  timeout: 180_000,
  reporter: [['list']],
  use: { ...base.use, trace: 'off', screenshot: 'off' },
});
