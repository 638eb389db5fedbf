// What rendering costs the page's main thread while a long Markdown answer
// streams in: each token's EventSource handler with the WASM work it
// queues, plus a share of the frame that renders it (the Markdown update,
// Leptos's DOM changes and the style and layout they cause, forced inside
// the frame so they are counted; paint is not). Written as JSON to
// $BENCH_BROWSER_OUT for the benchmark binary.
import { writeFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { resetFake, setBehavior } from '../tests/fake';
import { lastAnswer, openChat, send } from '../tests/chat-page';

/** About `tokens` whitespace-separated tokens of Markdown as models write it. */
function markdownAnswer(tokens: number): string {
  const sections: string[] = [];
  let count = 0;
  for (let n = 1; count < tokens; n++) {
    const section = [
      `## Part ${n}: what to know`,
      '',
      `This part explains step ${n} in some detail, with **bold words**, \`inline code\` and a link to https://example.com/docs/${n} for more.`,
      '',
      '- first point, said briefly',
      '- second point, with *emphasis*',
      '  - a nested detail',
      '- third point',
      '',
      '| Option | Default | Meaning |',
      '|--------|---------|---------|',
      `| depth | ${n} | how far it goes |`,
      '| width | 80 | how wide it is |',
      '',
      '```rust',
      `fn step_${n}(input: &str) -> usize {`,
      '    input.split_whitespace().count()',
      '}',
      '```',
      '',
    ].join('\n');
    sections.push(section);
    count += section.split(/\s+/).filter(Boolean).length;
  }
  return sections.join('\n');
}

/** Percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

test.beforeEach(resetFake);

test('render cost per token over a long Markdown answer', async ({ page, browser }) => {
  const tokens = Number(process.env.BENCH_RENDER_TOKENS ?? 5000);
  const rate = Number(process.env.BENCH_RENDER_RATE ?? 200);
  const reply = markdownAnswer(tokens);
  await page.addInitScript(() => {
    const bench = {
      tokens: [] as { at: number; ms: number }[],
      frames: [] as { at: number; ms: number }[],
      longTasks: [] as { start: number; ms: number }[],
      hydratedAt: 0,
    };
    (window as any).__bench = bench;
    // Each token arrives as an EventSource message: time its handler.
    const add = EventSource.prototype.addEventListener;
    EventSource.prototype.addEventListener = function (type: string, listener: any, options?: any) {
      // The WASM side reads the event in a microtask its listener queues;
      // one queued after the listener runs after that work.
      const timed = function (this: EventSource, event: Event) {
        const start = performance.now();
        try {
          return typeof listener === 'function' ? listener.call(this, event) : listener.handleEvent(event);
        } finally {
          if (type === 'message') {
            queueMicrotask(() => bench.tokens.push({ at: start, ms: performance.now() - start }));
          }
        }
      };
      return add.call(this, type, timed, options);
    };
    // Each frame's callbacks (the Markdown update), then the style and
    // layout they caused, forced here so they are inside the measurement.
    const raf = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (callback: FrameRequestCallback) =>
      raf((time) => {
        const start = performance.now();
        callback(time);
        // Leptos applies the DOM changes in microtasks the callback queued.
        queueMicrotask(() => {
          void document.body.offsetHeight;
          bench.frames.push({ at: start, ms: performance.now() - start });
        });
      });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) bench.longTasks.push({ start: entry.startTime, ms: entry.duration });
    }).observe({ type: 'longtask', buffered: true });
    new MutationObserver(() => {
      if (!bench.hydratedAt && document.querySelector('.chat[data-hydrated="true"]')) {
        bench.hydratedAt = performance.now();
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
  });

  await setBehavior({ reply, token_delay_ms: 1000 / rate });
  // A Chrome trace of the load and the streaming, to find what a long task was made of.
  const tracePath = process.env.BENCH_BROWSER_TRACE;
  if (tracePath) {
    await browser.startTracing(page, {
      path: tracePath,
      categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'v8.execute', 'disabled-by-default-v8.gc'],
    });
  }
  await openChat(page);
  const hydratedAt = await page.evaluate(() => (window as any).__bench.hydratedAt);
  // Long tasks count from here: loading and hydrating are measured apart.
  const sentAt = await page.evaluate(() => performance.now());
  await send(page, 'Explain it all at length');
  // Tens of seconds at 200 tokens/s: the answer's stats line says it is over.
  await expect(lastAnswer(page).getByTestId('message-stats')).toBeVisible({ timeout: 150_000 });
  await expect(page.locator('[data-testid="message-assistant"] pre code').first()).toBeVisible();
  if (tracePath) await browser.stopTracing();

  const raw = await page.evaluate(() => (window as any).__bench);
  // A frame's cost is shared by the tokens it rendered (those that arrived
  // since the frame before); a token's cost is its handler plus that share.
  const perToken: number[] = [];
  let next = 0;
  let previousFrame = -Infinity;
  for (const frame of raw.frames) {
    const arrived: number[] = [];
    while (next < raw.tokens.length && raw.tokens[next].at < frame.at) {
      if (raw.tokens[next].at >= previousFrame) arrived.push(raw.tokens[next].ms);
      next++;
    }
    previousFrame = frame.at;
    if (arrived.length === 0) continue;
    for (const ms of arrived) perToken.push(ms + frame.ms / arrived.length);
  }
  const streamingTasks: number[] = raw.longTasks
    .filter((task: { start: number }) => task.start >= sentAt)
    .map((task: { ms: number }) => task.ms);
  // When each happened: after the send, and how many tokens had arrived.
  const taskTimes = raw.longTasks
    .filter((task: { start: number }) => task.start >= sentAt)
    .map((task: { start: number; ms: number }) => ({
      after_send_ms: Math.round(task.start - sentAt),
      tokens_before: raw.tokens.filter((token: { at: number }) => token.at < task.start).length,
      ms: Math.round(task.ms),
    }));
  const sorted = [...perToken].sort((a, b) => a - b);
  const early = perToken.slice(50, 250);
  const late = perToken.slice(-200);
  const result = {
    tokens: raw.tokens.length,
    rate,
    per_token_p50_ms: percentile(sorted, 50),
    per_token_p95_ms: percentile(sorted, 95),
    per_token_max_ms: sorted[sorted.length - 1] ?? 0,
    early_mean_ms: mean(early),
    late_mean_ms: mean(late),
    late_over_early: mean(late) / Math.max(1e-9, mean(early)),
    frames: raw.frames.length,
    long_tasks: streamingTasks.length,
    longest_task_ms: Math.max(0, ...streamingTasks),
    long_task_times: taskTimes,
    load_to_interactive_ms: hydratedAt,
  };
  console.log(JSON.stringify(result));
  if (process.env.BENCH_BROWSER_OUT) writeFileSync(process.env.BENCH_BROWSER_OUT, JSON.stringify(result));
  expect(result.tokens).toBeGreaterThan(tokens * 0.9);
});
