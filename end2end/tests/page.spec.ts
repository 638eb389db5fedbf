// The page at `/`: server-rendered, hydrated, usable without JavaScript.
import { expect, test } from '@playwright/test';
import { resetFake } from './fake';

test.beforeEach(resetFake);

test('the page shows its title and the models the backend offers', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveTitle('llm-chat');
  const rows = page.getByTestId('model-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText('llama3.2:latest');
  await expect(rows.nth(1)).toContainText('qwen2.5:0.5b');
});

test('the page hydrates without errors', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  const wasm = page.waitForResponse((response) => response.url().endsWith('/pkg/llm-chat.wasm'));
  await page.goto('/');
  expect((await wasm).status()).toBe(200);
  await page.waitForLoadState('networkidle');
  expect(errors).toEqual([]);
});

test('with JavaScript off the first render still lists the models', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'llm-chat' })).toBeVisible();
  await expect(page.getByTestId('model-row')).toHaveCount(2);
  await context.close();
});
