// GraphiQL as a developer uses it, in chromium: everything it loads comes from the server, a
// query runs with the token put in the Headers tab, a subscription receives live events over the
// WebSocket signed in with that token, and the docs pane shows the schema.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BASE, agent, launch, owner, screenshot, until } from './support.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** GraphiQL in a new browser context, with every address the page reached and its errors. */
async function openGraphiql() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const reached = [];
  page.on('request', (request) => reached.push(request.url()));
  page.on('websocket', (socket) => reached.push(socket.url()));
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  const schema = page.waitForResponse((response) =>
    response.request().postData()?.includes('query IntrospectionQuery'));
  await page.goto(`${BASE}/graphql`);
  // The editors are made after the page appears; a run before they exist does nothing.
  for (const editor of [queryEditor(page), headersEditor(page), resultPane(page)]) {
    await editor.locator('.CodeMirror:visible').waitFor();
  }
  await schema;
  return { context, page, reached, problems };
}

/**
 * The run button once GraphiQL has read the one operation in the editor. It reads them a moment
 * after each edit, and while it knows of several the button opens a menu to choose one.
 */
const run = (page) => page.locator('button[aria-label="Execute query (Ctrl-Enter)"]:not([aria-haspopup])');
const stop = (page) => page.getByRole('button', { name: 'Stop query (Ctrl-Enter)' });
const queryEditor = (page) => page.getByRole('region', { name: 'Query Editor' });
const headersEditor = (page) => page.getByRole('region', { name: 'Headers' });
const resultPane = (page) => page.getByRole('region', { name: 'Result Window' });

/** Replaces what an editor holds, as pasting would, and closes the autocompletion it opens. */
async function write(page, editor, text) {
  await editor.locator('.CodeMirror:visible').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Escape');
}

/** Waits until the result pane shows `text`. */
async function resultShows(page, text, timeout = 10000) {
  return until(async () => (await resultPane(page).innerText()).includes(text),
    `the result pane to show ${text}`, timeout);
}

/** Every address the page reached is this server's (or inline data). */
function assertOnlyOurServer(reached) {
  const ours = new URL(BASE).host;
  const elsewhere = reached.filter((url) => !url.startsWith('data:') && new URL(url).host !== ours);
  assert.deepEqual(elsewhere, [], 'GraphiQL reached another site');
  assert.ok(reached.some((url) => url.includes('/graphiql/graphiql.min.js')), reached.join('\n'));
}

test('GraphiQL loads from the server alone and runs a query with the token from the Headers tab', async () => {
  const token = await owner();
  const { context, page, reached, problems } = await openGraphiql();
  try {
    // The page explains how to sign in, and opens with the Headers tab in view.
    await queryEditor(page).getByText('Bearer <accessToken>').first().waitFor();
    await headersEditor(page).waitFor();

    await write(page, queryEditor(page), '{ me { email role } }');
    await run(page).click();
    await resultShows(page, 'UNAUTHENTICATED');

    await write(page, headersEditor(page), `{"Authorization": "Bearer ${token}"}`);
    await run(page).click();
    await resultShows(page, '"email": "owner@example.com"');
    await resultShows(page, '"role": "OWNER"');
    await screenshot(page, 'graphiql');

    assertOnlyOurServer(reached);
    assert.deepEqual(problems, [], 'errors in the page');
  } finally {
    await context.close();
  }
});

test('a GraphiQL subscription receives live events over the WebSocket with the header\'s token', async () => {
  const gia = await agent('Gia Graphiql');
  const { context, page, reached, problems } = await openGraphiql();
  try {
    await write(page, queryEditor(page), 'subscription { me { name routingStatus } }');
    // Without a token the page says what to do rather than opening a socket the server refuses.
    await run(page).click();
    await resultShows(page, 'Subscriptions need a token');

    await write(page, headersEditor(page), `{"authorization": "Bearer ${gia.token}"}`);
    await run(page).click();
    await resultShows(page, '"routingStatus": "ACCEPTING_CHATS"');
    await stop(page).waitFor();

    // A change made elsewhere arrives while the subscription runs.
    await gia.gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }');
    await resultShows(page, '"routingStatus": "NOT_ACCEPTING_CHATS"');
    await screenshot(page, 'graphiql-subscription');
    await stop(page).click();
    await run(page).waitFor();

    assertOnlyOurServer(reached);
    assert.ok(reached.some((url) => url === `${BASE.replace(/^http/, 'ws')}/graphql`), reached.join('\n'));
    assert.deepEqual(problems, [], 'errors in the page');
  } finally {
    await context.close();
    await gia.leave();
  }
});

test('the GraphiQL docs pane shows the schema at the default limits', async () => {
  const { context, page, reached, problems } = await openGraphiql();
  try {
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.getByLabel('Documentation Explorer');
    await docs.getByText('Root Types').waitFor();
    await docs.getByText('QueryRoot', { exact: true }).click();
    await docs.getByText('agentEventsCursor').first().waitFor();
    await docs.getByText('Agent', { exact: true }).first().click();
    await docs.getByText('routingStatus').first().waitFor();
    await screenshot(page, 'graphiql-docs');

    assertOnlyOurServer(reached);
    assert.deepEqual(problems, [], 'errors in the page');
  } finally {
    await context.close();
  }
});
