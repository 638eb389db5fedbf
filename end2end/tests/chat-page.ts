// Helpers for driving the chat page the way a person does.
import { expect, type Page } from '@playwright/test';

/**
 * Opens the chat and waits until the WASM bundle has made it live and the
 * answers' renderer, fetched right after, has arrived: the state a person
 * types in. (markdown.spec holds the renderer back to test the moments before.)
 */
export async function openChat(page: Page, url = '/'): Promise<void> {
  await page.goto(url);
  await expect(page.locator('.chat[data-hydrated="true"][data-renderer="ready"]')).toBeVisible();
}

/** Types a message and sends it with Enter. */
export async function send(page: Page, text: string): Promise<void> {
  const input = page.getByTestId('message-input');
  await input.fill(text);
  await input.press('Enter');
}

export function lastAnswer(page: Page) {
  return page.getByTestId('message-assistant').last();
}

export function answerText(page: Page) {
  return lastAnswer(page).getByTestId('message-text');
}

/** Waits for the last answer to finish (its stats line appears). */
export async function waitForAnswer(page: Page): Promise<void> {
  await expect(lastAnswer(page).getByTestId('message-stats')).toBeVisible();
  await expect(page.getByTestId('send-button')).toHaveText('Send');
}

/**
 * Starts recording every text the last answer bubble shows, at each DOM
 * change, with the time it appeared. Read it back with `recordedTexts`.
 */
export async function recordAnswerTexts(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: { at: number; text: string }[] = [];
    (window as any).__answerTexts = seen;
    const read = () => {
      const answers = document.querySelectorAll('[data-testid="message-assistant"] [data-testid="message-text"]');
      const last = answers[answers.length - 1];
      const text = last?.textContent ?? '';
      if (text !== '' && (seen.length === 0 || seen[seen.length - 1].text !== text)) {
        seen.push({ at: performance.now(), text });
      }
    };
    new MutationObserver(read).observe(document.querySelector('.messages')!, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  });
}

export async function recordedTexts(page: Page): Promise<{ at: number; text: string }[]> {
  return page.evaluate(() => (window as any).__answerTexts);
}

/** A gauge from the server's /metrics. */
export async function metric(page: Page, name: string): Promise<number> {
  const response = await page.request.get('/metrics');
  const line = (await response.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}
