// Controls for the fake Ollama the suite runs against: its behaviour, and
// the log of what it saw.
import { expect, request } from '@playwright/test';

export const FAKE_URL = `http://127.0.0.1:${process.env.E2E_FAKE_PORT}`;

/** The knobs of fake-ollama's Behavior (fake-ollama/src/behavior.rs). */
export interface Behavior {
  tokens?: number;
  reply?: string;
  thinking?: string;
  token_delay_ms?: number;
  headers_delay_ms?: number;
  hang_before_headers?: boolean;
  status_before_body?: number;
  fail_after?: number;
  malformed_after?: number;
  truncate_after?: number;
  text_in_final_chunk?: boolean;
  error_message?: string;
  pull_steps?: number;
  pull_step_ms?: number;
}

export interface FakeEvent {
  kind: 'request' | 'completed' | 'disconnected';
  id: number;
  path: string;
  body?: any;
  tokens_sent?: number;
}

/** Replaces the fake's behaviour (unset knobs take their defaults). */
export async function setBehavior(behavior: Behavior): Promise<void> {
  const api = await request.newContext();
  const response = await api.post(`${FAKE_URL}/_fake/behavior`, { data: behavior });
  expect(response.ok(), await response.text()).toBeTruthy();
  await api.dispose();
}

export async function clearEvents(): Promise<void> {
  const api = await request.newContext();
  await api.delete(`${FAKE_URL}/_fake/events`);
  await api.dispose();
}

export async function events(): Promise<FakeEvent[]> {
  const api = await request.newContext();
  const response = await api.get(`${FAKE_URL}/_fake/events`);
  const body = await response.json();
  await api.dispose();
  return body.events;
}

/** Puts the fake back to its defaults with an empty log; call before each test. */
export async function resetFake(): Promise<void> {
  await setBehavior({});
  await clearEvents();
}
