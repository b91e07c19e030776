// What the browser scenarios share: the server's address, an agent's side of the API (GraphQL
// over fetch, agentEvents over graphql-transport-ws), chromium, waiting and screenshots.

import { mkdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

export const BASE = process.env.SWITCHBOARD_URL;
if (!BASE) throw new Error('SWITCHBOARD_URL is not set: run the suite with tests/browser/run.sh');
export const OWNER_PASSWORD = process.env.SWITCHBOARD_OWNER_PASSWORD;
export const OUTPUT = join(here, 'output');
mkdirSync(OUTPUT, { recursive: true });

export const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs a GraphQL operation; throws with the error code when it fails. */
export async function gql(query, variables = {}, token = null) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) {
    const error = new Error(`${body.errors[0].message} (${query.slice(0, 60)}…)`);
    error.code = body.errors[0].extensions?.code;
    throw error;
  }
  return body.data;
}

/** Waits until `check` returns something truthy, and returns it. */
export async function until(check, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let ownerToken = null;
/** The bootstrapped owner, who creates the agents but takes no chats. */
export async function owner() {
  if (!ownerToken) {
    const data = await gql(
      'mutation($p: String!) { login(input: {email: "owner@example.com", password: $p}) { accessToken } }',
      { p: OWNER_PASSWORD },
    );
    ownerToken = data.login.accessToken;
    await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, ownerToken);
  }
  return ownerToken;
}

/** A new group (department) of the organization; its id. */
export async function group(name) {
  const data = await gql('mutation($name: String!) { createGroup(input: {name: $name}) { id } }', { name },
    await owner());
  return data.createGroup.id;
}

export async function widgetKey() {
  const data = await gql('{ organization { widgetKey } }', {}, await owner());
  return data.organization.widgetKey;
}

let agents = 0;
/** A new agent, signed in, accepting chats, with a live agentEvents stream. */
export async function agent(name, { chatLimit = null, groupIds = [] } = {}) {
  const email = `agent${++agents}-${Date.now()}@example.com`;
  await gql(
    'mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name, password: 'agent-password-1', role: 'AGENT', chatLimit, groupIds } },
    await owner(),
  );
  const data = await gql(
    'mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken agent { id } } }',
    { e: email },
  );
  const a = new Agent(name, data.login.agent.id, data.login.accessToken);
  await a.listen();
  return a;
}

const AGENT_EVENTS = `subscription($since: String) { agentEvents(since: $since) {
  __typename cursor
  ... on ChatAssigned { chat { id } }
  ... on MessageAdded { chat { id } message { text author kind } }
  ... on TypingChanged { chat { id } isTyping draft author }
  ... on ChatClosed { chat { id } }
  ... on OfflineMessageReceived { offlineMessage { id text } }
} }`;

export class Agent {
  constructor(name, id, token) {
    this.name = name;
    this.id = id;
    this.token = token;
    this.events = [];
    this.socket = null;
  }

  gql(query, variables) {
    return gql(query, variables, this.token);
  }

  async listen() {
    const { agentEventsCursor } = await this.gql('{ agentEventsCursor }');
    const socket = new WebSocket(`${BASE.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    this.socket = socket;
    await new Promise((resolve, reject) => {
      socket.on('error', reject);
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${this.token}` } })));
      socket.on('message', (raw) => {
        const message = JSON.parse(raw.toString());
        if (message.type === 'connection_ack') {
          socket.send(JSON.stringify({
            id: 'events', type: 'subscribe',
            payload: { query: AGENT_EVENTS, variables: { since: agentEventsCursor } },
          }));
          resolve();
        } else if (message.type === 'next') {
          this.events.push(message.payload.data.agentEvents);
        } else if (message.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }));
        }
      });
    });
  }

  /** The first event (from the start of the stream) that `match` accepts. */
  event(match, what, timeout) {
    return until(() => this.events.find(match), what, timeout);
  }

  async assignedChat(timeout) {
    const event = await this.event((e) => e.__typename === 'ChatAssigned', `a chat assigned to ${this.name}`, timeout);
    return event.chat.id;
  }

  /** Stops taking chats and signs out, so later scenarios route nothing to this agent. */
  async leave() {
    await this.gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }').catch(() => {});
    await this.gql('mutation { logout }').catch(() => {});
    this.socket?.close();
  }
}

/** A customer started through the API rather than a browser (to fill a queue). */
export async function apiCustomer(key, name) {
  const data = await gql(
    'mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }',
    { input: { widgetKey: key, name, pageUrl: 'https://shop.test/' } },
  );
  const token = data.startVisitorSession.token;
  const started = await gql('mutation($m: String!) { startChat(input: {message: $m}) { id status } }',
    { m: `Hello from ${name}` }, token);
  return { token, chat: started.startChat };
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
}

/** A page in a browser context of its own (desk size unless `options` say otherwise); what goes
 * wrong inside it ends up in the test's output. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') console.error(`[browser] ${message.text()}`);
  });
  page.on('pageerror', (error) => console.error(`[browser] ${error.message}`));
  return { context, page };
}

/** The widget's frame inside `page`, for locators. */
export function widget(page) {
  return page.frameLocator('iframe[title="Chat"]');
}

/** The widget's frame as a Frame, to evaluate scripts in it. */
export async function widgetFrame(page) {
  return until(() => page.frames().find((f) => f.url().includes('/widget/frame.html')), 'the widget frame');
}

export async function screenshot(page, name) {
  await page.screenshot({ path: join(OUTPUT, `${name}.png`), animations: 'disabled' });
}

/** Runs axe-core inside the widget's frame; returns the serious and critical violations. */
export async function accessibilityProblems(page) {
  const frame = await widgetFrame(page);
  // Evaluated through the debugging protocol, which the frame's CSP does not govern.
  await frame.evaluate(AXE_SOURCE);
  const results = await frame.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * A TCP proxy in front of the server, to cut the network: `cut()` drops every connection and
 * refuses new ones until `restore()`. Pages loaded through `url` reach the server only through it.
 */
export async function flakyNetwork() {
  const target = new URL(BASE);
  const sockets = new Set();
  let down = false;
  const proxy = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      sockets.add(a);
      a.on('close', () => sockets.delete(a));
    }
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

const WIDGET_SETTINGS = 'mutation($input: UpdateWidgetSettingsInput!) { updateWidgetSettings(input: $input) { color } }';

/** Sets the organization's widget settings, as an admin would. */
export async function widgetSettings(input) {
  await gql(WIDGET_SETTINGS, { input }, await owner());
}

/** The settings every scenario starts from: name and email asked, but optional. */
export const USUAL_SETTINGS = {
  color: '#1a5fd0', position: 'RIGHT', title: null, greeting: null, offlineText: null,
  preChatName: 'OPTIONAL', preChatEmail: 'OPTIONAL', locale: 'en', allowedOrigins: [],
};

/** Waits (bounded) for `locator` to reach `state`; a timeout says what was expected. */
export async function shows(locator, what, { timeout = 10000, state = 'visible' } = {}) {
  try {
    await locator.waitFor({ state, timeout });
  } catch (err) {
    throw new Error(`expected ${what} within ${timeout} ms (${err.message.split('\n')[0]})`);
  }
  return locator;
}

/** Runs axe-core on a page of its own (not the widget's frame); the serious and critical violations. */
export async function pageAccessibilityProblems(page) {
  // Evaluated through the debugging protocol, which the page's CSP does not govern.
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
