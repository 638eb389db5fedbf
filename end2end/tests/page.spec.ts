// The page at `/`: server-rendered, hydrated, usable without JavaScript.
import { expect, test } from '@playwright/test';
import { resetFake } from './fake';
import { openChat } from './chat-page';

test.beforeEach(resetFake);

test('the page shows its title and a picker of every backend\'s models', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveTitle('llm-chat');
  const options = page.getByTestId('model-picker').locator('option');
  // Ollama's (the fake's) first, then the embedded default model.
  await expect(options).toHaveText([
    /^llama3\.2:latest/,
    /^qwen2\.5:0\.5b/,
    /^smollm2:135m .*embedded/,
    /^gemma3:270m .*embedded/,
  ]);
});

test('the page hydrates without errors', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await openChat(page);
  await page.waitForLoadState('networkidle');
  expect(errors).toEqual([]);
});

test('with JavaScript off the first render still shows the page and the models', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'llm-chat' })).toBeVisible();
  const options = page.getByTestId('model-picker').locator('option');
  await expect(options).toHaveCount(4);
  await expect(options.nth(0)).toContainText('llama3.2:latest');
  await expect(page.getByTestId('message-input')).toBeVisible();
  await context.close();
});

test('every control has a label', async ({ page }) => {
  await openChat(page);
  await expect(page.getByLabel(/^Model(?!s)/)).toBeVisible();
  await expect(page.getByLabel('Models', { exact: true })).toBeVisible();
  await expect(page.getByLabel('Stream response')).toBeVisible();
  await expect(page.getByLabel('Message')).toBeVisible();
  await expect(page.getByTestId('clear-button')).toHaveAccessibleName('New chat');
  await expect(page.getByRole('button', { name: 'Send' })).toBeVisible();
});

test('the settings and Models panels are fetched the first time they open, not with the page', async ({ page }) => {
  const fetched: string[] = [];
  page.on('request', (request) => fetched.push(new URL(request.url()).pathname));
  await openChat(page);
  await page.waitForLoadState('networkidle');
  const panels = () => fetched.filter((path) => /\/split_\w+_panel_/.test(path));
  expect(fetched.some((path) => /\/pkg\/llm-chat\.[^/]+\.wasm$/.test(path))).toBe(true);
  expect(panels()).toEqual([]);

  // Its own file, kept a year as the bundle's other files are.
  const settingsCode = page.waitForResponse((response) => response.url().includes('/split_settings_panel'));
  await page.getByTestId('settings-button').click();
  await expect(page.getByTestId('settings-panel')).toBeVisible();
  expect((await settingsCode).headers()['cache-control']).toBe('public, max-age=31536000, immutable');
  expect(panels()).toEqual([expect.stringMatching(/\/pkg\/split_settings_panel_[^/]+\.wasm$/)]);

  await page.getByTestId('models-button').click();
  await expect(page.getByTestId('models-panel')).toBeVisible();
  expect(panels()).toHaveLength(2);
  expect(panels()[1]).toMatch(/\/pkg\/split_models_panel_[^/]+\.wasm$/);

  // Closed and opened again: already loaded, nothing fetched.
  await page.getByTestId('settings-button').click();
  await expect(page.getByTestId('settings-panel')).toBeHidden();
  await page.getByTestId('settings-button').click();
  await expect(page.getByTestId('settings-panel')).toBeVisible();
  expect(panels()).toHaveLength(2);
});
