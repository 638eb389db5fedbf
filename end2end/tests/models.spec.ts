// The Models panel: every model with what serves it, pulling one with a
// progress bar that advances (and cancelling a pull, which must reach
// Ollama), deleting one after a confirmation.
import { expect, test, type Page } from '@playwright/test';
import { FAKE_URL, events, resetFake, setBehavior } from './fake';
import { openChat } from './chat-page';

test.beforeEach(resetFake);

async function openModels(page: Page) {
  await openChat(page);
  await page.getByTestId('models-button').click();
  await expect(page.getByTestId('models-panel')).toBeVisible();
  return page.getByTestId('models-panel');
}

function row(page: Page, model: string) {
  return page.locator(`[data-testid="model-row"][data-model="${model}"]`);
}

/** Removes a model from the fake, whatever a test left behind. */
async function removeFromFake(page: Page, model: string) {
  await page.request.delete(`${FAKE_URL}/api/delete`, { data: { model } });
}

/** The value the pull's <progress> shows, 0 before any size is known. */
async function barValue(page: Page): Promise<number> {
  return page.getByTestId('pull-bar').evaluate((bar: HTMLProgressElement) =>
    bar.hasAttribute('value') ? bar.value : 0,
  );
}

test('lists every model with the backend serving it, its size, family and quantisation', async ({ page }) => {
  await openModels(page);
  const llama = row(page, 'llama3.2:latest');
  await expect(llama.locator('td')).toHaveText(['ollama', '2.0 GB', 'llama', '3.2B', 'Q4_K_M', 'Delete']);
  await expect(row(page, 'qwen2.5:0.5b')).toBeVisible();
  // The panel closes as it opened.
  await page.getByTestId('models-button').click();
  await expect(page.getByTestId('models-panel')).toBeHidden();
});

test('pulls a model with the progress bar advancing, then lists it and offers it in the picker', async ({ page }) => {
  await removeFromFake(page, 'phi3:mini');
  await setBehavior({ pull_steps: 10, pull_step_ms: 300 });
  await openModels(page);
  await page.getByTestId('pull-model-input').fill('phi3:mini');
  await page.getByTestId('pull-button').click();

  const progress = page.getByTestId('pull-progress');
  await expect(progress).toContainText('Pulling phi3:mini');
  await expect.poll(() => barValue(page)).toBeGreaterThan(0);
  const early = await barValue(page);
  await expect(page.getByTestId('pull-bytes')).toHaveText(/^[\d.]+ [KMG]?B of 1\.3 GB$/);
  await expect(page.getByTestId('pull-percent')).toHaveText(/^\d+%$/);
  // A speed needs two samples some time apart.
  await expect(page.getByTestId('pull-speed')).toHaveText(/^[\d.]+ [KMG]?B\/s$/);
  await expect.poll(() => barValue(page)).toBeGreaterThan(early);

  await expect(page.getByTestId('models-outcome')).toHaveText('Pulled phi3:mini.');
  await expect(progress).toBeHidden();
  await expect(row(page, 'phi3:mini')).toBeVisible();
  await expect(page.getByTestId('model-picker').locator('option[value="phi3:mini"]')).toHaveCount(1);
  await removeFromFake(page, 'phi3:mini');
});

test('cancelling a pull stops it at Ollama and lists nothing new', async ({ page }) => {
  await setBehavior({ pull_steps: 40, pull_step_ms: 250 });
  await openModels(page);
  await page.getByTestId('pull-model-input').fill('mistral:7b');
  await page.getByTestId('pull-button').click();
  await expect.poll(() => barValue(page)).toBeGreaterThan(0);

  await page.getByTestId('pull-cancel').click();
  await expect(page.getByTestId('models-outcome')).toHaveText('Cancelled the pull of mistral:7b.');
  await expect(page.getByTestId('pull-progress')).toBeHidden();
  // The fake sees its pull's client leave, well before the pull would end.
  await expect
    .poll(async () => (await events()).some((e) => e.kind === 'disconnected' && e.path === '/api/pull'), {
      timeout: 2_000,
    })
    .toBe(true);
  await expect(row(page, 'mistral:7b')).toHaveCount(0);
  const listed = await (await page.request.get('/api/v1/models')).json();
  expect(listed.models.map((m: { name: string }) => m.name)).not.toContain('mistral:7b');
});

test('a pull Ollama refuses says why', async ({ page }) => {
  await openModels(page);
  // The fake's registry has no model of this name, as Ollama's would not.
  await page.getByTestId('pull-model-input').fill('missing-model:1b');
  await page.getByTestId('pull-button').click();
  await expect(page.getByTestId('models-outcome')).toContainText('file does not exist');
  await expect(page.getByTestId('models-outcome')).toHaveClass(/failed/);
});

test('deletes a model only once the user confirms', async ({ page }) => {
  // Put a model on the fake, as if pulled earlier.
  const pulled = await page.request.post(`${FAKE_URL}/api/pull`, { data: { model: 'gemma2:2b', stream: false } });
  expect(pulled.ok()).toBeTruthy();
  await openModels(page);
  const gemma = row(page, 'gemma2:2b');
  await expect(gemma).toBeVisible();

  // Cancel leaves it alone.
  await gemma.getByTestId('delete-model-button').click();
  await expect(gemma).toContainText('Delete gemma2:2b from ollama?');
  await gemma.getByRole('button', { name: 'Cancel' }).click();
  await expect(gemma.getByTestId('confirm-delete')).toHaveCount(0);
  expect((await events()).some((e) => e.path === '/api/delete')).toBe(false);

  await gemma.getByTestId('delete-model-button').click();
  await gemma.getByTestId('confirm-delete').click();
  await expect(page.getByTestId('models-outcome')).toHaveText('Deleted gemma2:2b.');
  await expect(gemma).toHaveCount(0);
  await expect(page.getByTestId('model-picker').locator('option[value="gemma2:2b"]')).toHaveCount(0);
  const deleted = (await events()).filter((e) => e.path === '/api/delete');
  expect(deleted.map((e) => e.body?.model)).toEqual(['gemma2:2b']);
});
