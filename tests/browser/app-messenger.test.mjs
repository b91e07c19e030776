// Facebook Messenger in the agent web app: an admin connects a page on the Messenger screen, a
// signed webhook event (signed here with the test's app secret) starts a chat shown with a
// Messenger badge, the agent answers in the web app, and the fake Graph API this file runs
// (on the port run.sh gave the server as SWITCHBOARD_MESSENGER_GRAPH_URL) records the Send API
// call with the page's token and the text.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, gql, group, launch, newPage as openPage, owner, screenshot, shows, until,
} from './support.mjs';

const PORT = Number(process.env.SWITCHBOARD_MESSENGER_FAKE_PORT);
const PAGE_ID = String(9000000000 + (Date.now() % 1000000000));
const TOKEN = 'EAAbrowser-page-token-4242';
const APP_SECRET = 'browser-app-secret-0123456789';
const PSID = '6060606060';

/** What the fake Graph API was sent. @type {{path: string, token: string | null, body: any}[]} */
const calls = [];
let fake;
let browser;

before(async () => {
  assert.ok(PORT, 'run.sh sets SWITCHBOARD_MESSENGER_FAKE_PORT');
  fake = createServer((request, response) => {
    const url = new URL(request.url, 'http://fake');
    const token = url.searchParams.get('access_token');
    let raw = '';
    request.on('data', (chunk) => { raw += chunk; });
    request.on('end', () => {
      const reply = (status, body) => {
        response.writeHead(status, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify(body));
      };
      if (token !== TOKEN) {
        reply(400, { error: { message: 'Invalid OAuth access token.', code: 190 } });
        return;
      }
      if (request.method === 'POST' && url.pathname.endsWith('/me/messages')) {
        const body = JSON.parse(raw);
        calls.push({ path: url.pathname, token, body });
        reply(200, { recipient_id: body.recipient.id, message_id: `m_out_${calls.length}` });
      } else if (url.pathname.endsWith(`/${PAGE_ID}`)) {
        reply(200, { id: PAGE_ID, name: 'Browser Boots' });
      } else if (url.pathname.endsWith(`/${PSID}`)) {
        reply(200, { id: PSID, first_name: 'Grace', last_name: 'Hopper' });
      } else {
        reply(404, { error: { message: 'unknown path' } });
      }
    });
  });
  await new Promise((resolve) => fake.listen(PORT, '127.0.0.1', resolve));
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await new Promise((resolve) => (fake ? fake.close(resolve) : resolve()));
});

async function signIn(page, email, password) {
  await page.goto(`${BASE}/app/`);
  await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await shows(page.getByRole('switch', { name: 'Accept chats' }), `the app signed in as ${email}`);
}

/** Posts a webhook event from the user, signed as Facebook signs. */
async function postEvent(messaging) {
  const body = JSON.stringify({
    object: 'page',
    entry: [{ id: PAGE_ID, time: Date.now(), messaging: [{
      sender: { id: PSID }, recipient: { id: PAGE_ID }, timestamp: Date.now(), ...messaging,
    }] }],
  });
  const signature = 'sha256=' + createHmac('sha256', APP_SECRET).update(body).digest('hex');
  const response = await fetch(`${BASE}/channels/messenger/webhook`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': signature },
    body,
  });
  return response.status;
}

test('messenger: a page connected in the web app brings a customer\'s message, and the agent\'s answer reaches the Send API', async () => {
  const shoes = await group(`Messenger ${Date.now() % 100000}`);
  const email = `messenger-agent-${Date.now()}@example.com`;
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name: 'Mia Messenger', password: 'agent-password-1', role: 'AGENT', groupIds: [shoes] } },
    await owner());
  const admin = await openPage(browser);
  const desk = await openPage(browser);
  try {
    // The owner connects the page on the Messenger screen.
    await signIn(admin.page, 'owner@example.com', OWNER_PASSWORD);
    await admin.page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Messenger' }).click();
    const form = admin.page.getByRole('form', { name: 'Connect a Facebook page' });
    await shows(form, 'the Messenger screen');
    await form.getByLabel('Page id').fill(PAGE_ID);
    await form.getByLabel('Page access token').fill(TOKEN);
    await form.getByLabel('App secret').fill(APP_SECRET);
    await form.getByLabel('Verify token').fill('browser-verify');
    await form.getByRole('button', { name: 'Connect page' }).click();
    const pages = admin.page.getByRole('list', { name: 'Connected pages' });
    await shows(pages.getByText('Browser Boots'), 'the connected page listed by its name');
    assert.equal(await pages.getByText(TOKEN).count(), 0, 'the token is never shown back');
    await screenshot(admin.page, 'app-messenger-01-connected');
    // Its chats go to the agent's group (set through the API: the form connects, no more).
    const { messengerPages } = await gql('{ messengerPages { id pageId } }', {}, await owner());
    const page = messengerPages.find((p) => p.pageId === PAGE_ID);
    await gql('mutation($id: ID!, $g: ID!) { updateMessengerPage(id: $id, input: {groupId: $g}) { id } }',
      { id: page.id, g: shoes }, await owner());

    // The agent is in; a signed event from Messenger starts a chat, shown with a badge.
    await signIn(desk.page, email, 'agent-password-1');
    await shows(desk.page.locator('#status-text', { hasText: 'Accepting chats' }), 'Mia accepting chats');
    assert.equal(await postEvent({ message: { mid: `m_${Date.now()}`, text: 'Do the red boots come in 38?' } }), 200);
    const row = desk.page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Grace Hopper/ });
    await shows(row, 'the Messenger chat in My chats', { timeout: 15000 });
    await shows(row.getByText('Messenger'), 'the Messenger badge');
    await row.click();
    const log = desk.page.getByRole('log', { name: 'Conversation' });
    await shows(log.getByText('Do the red boots come in 38?'), 'the customer\'s message');

    // The answer goes out through the Send API with the page's token.
    const reply = desk.page.getByRole('combobox', { name: 'Reply' });
    await reply.fill('Yes, we have them in 38!');
    await reply.press('Enter');
    const sent = await until(() => calls.find((c) => c.body.message), 'the Send API call', 15000);
    assert.equal(sent.token, TOKEN);
    assert.deepEqual(sent.body, {
      recipient: { id: PSID }, messaging_type: 'RESPONSE', message: { text: 'Yes, we have them in 38!' },
    });
    await shows(log.getByText('Yes, we have them in 38!'), 'the answer in the transcript');
    await shows(log.getByText('Sent', { exact: true }), 'the answer marked sent', { timeout: 15000 });
    await screenshot(desk.page, 'app-messenger-02-answered');
  } finally {
    await admin.context.close();
    await desk.context.close();
  }
});
