// Playwright starts fake-ollama and llm-chat on free ports, then drives
// Debian's Chromium (never a downloaded browser) against them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '@playwright/test';

/** A free loopback port, found synchronously (config loading is synchronous). */
function freePort(): string {
  const script =
    "const s=require('net').createServer();" +
    "s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close();});";
  return execFileSync(process.execPath, ['-e', script]).toString().trim();
}

// Workers re-read this file; the ports travel to them through the environment.
process.env.E2E_FAKE_PORT ??= freePort();
process.env.E2E_APP_PORT ??= freePort();
// A database of this run's own: the user's conversations are never touched.
process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'llm-chat-e2e-'));
export const FAKE_URL = `http://127.0.0.1:${process.env.E2E_FAKE_PORT}`;
const APP_URL = `http://127.0.0.1:${process.env.E2E_APP_PORT}`;

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  // One fake upstream whose behaviour tests change: run tests one at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  outputDir: 'test-results',
  use: {
    baseURL: APP_URL,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  webServer: [
    {
      command: `../target/release/fake-ollama --addr 127.0.0.1:${process.env.E2E_FAKE_PORT}`,
      url: `${FAKE_URL}/api/version`,
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // From the repo root, where the site root (target/site) is.
      command: './target/release/llm-chat',
      cwd: '..',
      url: `${APP_URL}/healthz`,
      reuseExistingServer: false,
      env: {
        LLM_CHAT_ADDR: `127.0.0.1:${process.env.E2E_APP_PORT}`,
        OLLAMA_URL: FAKE_URL,
        LLM_CHAT_DATABASE_URL: `sqlite://${process.env.E2E_DATA_DIR}/llm-chat.db`,
        LOG_FORMAT: 'json',
        RUST_LOG: 'warn',
      },
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
