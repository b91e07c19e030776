// Notes and tags in the agent web app: an admin defines a tag, an agent writes a note (shown to
// agents only, marked as such) and tags the chat; the customer's widget never shows the note.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, USUAL_SETTINGS, gql, launch, owner, pageAccessibilityProblems, screenshot, shows, until,
  widget, widgetSettings, newPage as openPage,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launch();
  await widgetSettings(USUAL_SETTINGS);
});
after(async () => {
  await browser?.close();
});

function newPage() {
  return openPage(browser);
}

async function signIn(page, email, password) {
  await page.goto(`${BASE}/app/`);
  await shows(page.getByRole('heading', { name: 'Sign in to Switchboard' }), 'the sign-in form');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await shows(page.getByRole('switch', { name: 'Accept chats' }), `the app signed in as ${email}`);
}

test('notes and tags: an agent adds a note and a tag to a chat, and the customer\'s widget never shows the note', async () => {
  const email = `notes-agent-${Date.now()}@example.com`;
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name: 'Nora Notes', password: 'agent-password-1', role: 'AGENT', groupIds: [] } }, await owner());
  const tagName = `Refund ${Date.now() % 100000}`;
  const admin = await newPage();
  const desk = await newPage();
  const customer = await newPage();
  const mate = await newPage();
  const mateEmail = `notes-mate-${Date.now()}@example.com`;
  try {
    // The owner defines a tag on the Tags screen.
    await signIn(admin.page, 'owner@example.com', OWNER_PASSWORD);
    await admin.page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Tags' }).click();
    await shows(admin.page.getByRole('heading', { name: 'Tags', level: 2 }), 'the tags screen');
    await admin.page.getByRole('form', { name: 'New tag' }).getByLabel('Name').fill(tagName);
    await admin.page.getByRole('button', { name: 'Add tag' }).click();
    await shows(admin.page.getByRole('list', { name: 'Tags' }).getByText(tagName), 'the new tag listed');
    await shows(admin.page.getByRole('checkbox', { name: 'Agents see their groups\' chats (read only)' }),
      'the teammates setting');
    await screenshot(admin.page, 'app-notes-01-tags');
    assert.deepEqual(await pageAccessibilityProblems(admin.page), [], 'axe: the tags screen');

    // A plain agent has no Tags screen, and takes the customer's chat.
    await signIn(desk.page, email, 'agent-password-1');
    await shows(desk.page.locator('#status-text', { hasText: 'Accepting chats' }), 'Nora accepting chats');
    const sections = desk.page.getByRole('navigation', { name: 'Sections' });
    assert.equal(await sections.getByRole('link', { name: 'Tags' }).count(), 0, 'tags are managed by admins');

    await customer.page.goto(`${BASE}/demo`);
    const w = widget(customer.page);
    const launcher = w.getByRole('button', { name: /Open the chat, We are online/ });
    await shows(launcher, 'the widget online', { timeout: 15000 });
    await launcher.click();
    await w.getByLabel('Name (optional)').fill('Olga Notes');
    await w.getByLabel('Message').fill('I would like my money back');
    await w.getByRole('button', { name: 'Start chat' }).click();
    const customerLog = w.getByRole('list', { name: 'Conversation' });
    await desk.page.getByRole('list', { name: 'My chats' }).getByRole('link', { name: /Olga Notes/ }).click();
    const log = desk.page.getByRole('log', { name: 'Conversation' });
    await shows(log.getByText('I would like my money back'), 'the chat open');

    // A note: the Note switch turns the reply box into a note for agents only.
    const reply = desk.page.getByRole('combobox', { name: 'Reply' });
    await desk.page.getByRole('checkbox', { name: 'Note' }).check();
    await shows(desk.page.getByRole('button', { name: 'Add note' }), 'the send button saying Add note');
    await reply.fill('NOTE: she ordered twice, refund one');
    await reply.press('Enter');
    const note = log.locator('.msg.agent-note', { hasText: 'NOTE: she ordered twice, refund one' });
    await shows(note, 'the note in the conversation');
    await shows(note.getByText('Note, agents only'), 'the note marked as agents only');
    assert.equal(await note.locator('.author').allTextContents().then((names) => names.join(',')), 'You', 'its author, once');
    const background = await note.evaluate((node) => getComputedStyle(node).backgroundColor);
    assert.equal(background, 'rgb(255, 243, 196)', 'a note stands out (yellow)');

    // A tag, from the organization's tags.
    await desk.page.getByRole('combobox', { name: 'Add a tag' }).selectOption({ label: tagName });
    const tags = desk.page.getByRole('list', { name: 'Tags' });
    await shows(tags.getByText(tagName), 'the tag on the chat');
    await shows(log.getByText(`Nora Notes added the tag \u201c${tagName}\u201d`), 'the tag change in the transcript');
    await screenshot(desk.page, 'app-notes-02-note-and-tag');
    assert.deepEqual(await pageAccessibilityProblems(desk.page), [], 'axe: a chat with a note and a tag');

    // Back to replying: the customer gets the reply, never the note nor the tag change.
    await desk.page.getByRole('checkbox', { name: 'Note' }).uncheck();
    await reply.fill('We will refund one of the orders today.');
    await reply.press('Enter');
    await shows(customerLog.getByText('We will refund one of the orders today.'), 'the reply at the customer');
    assert.equal(await customerLog.getByText('NOTE: she ordered twice', { exact: false }).count(), 0,
      'the customer never sees the note');
    assert.equal(await customerLog.getByText(tagName, { exact: false }).count(), 0, 'nor the tag change');
    // Nor after a reload of the widget, which reads the transcript again.
    await customer.page.reload();
    const again = widget(customer.page);
    await again.getByRole('button', { name: /Open the chat/ }).click().catch(() => {});
    await shows(again.getByRole('list', { name: 'Conversation' }).getByText('We will refund one of the orders today.'),
      'the reply after a reload', { timeout: 15000 });
    assert.equal(await again.getByRole('list', { name: 'Conversation' }).getByText('NOTE:', { exact: false }).count(), 0,
      'the reloaded widget never shows the note');

    // The tag comes off again.
    await tags.getByRole('button', { name: `Remove the tag ${tagName}` }).click();
    await until(async () => (await tags.getByText(tagName).count()) === 0, 'the tag removed');

    // With teammates' chats allowed, another agent reads the chat, note included, and cannot act in it.
    await admin.page.getByRole('checkbox', { name: 'Agents see their groups\' chats (read only)' }).check();
    await until(async () => (await gql('{ organization { settings { agentsSeeGroupChats } } }', {}, await owner()))
      .organization.settings.agentsSeeGroupChats === true, 'the setting saved');
    await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
      { input: { email: mateEmail, name: 'Tom Teammate', password: 'agent-password-1', role: 'AGENT', groupIds: [] } },
      await owner());
    await signIn(mate.page, mateEmail, 'agent-password-1');
    await mate.page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Team chats' }).click();
    await mate.page.getByRole('list', { name: 'Team chats' }).getByRole('link', { name: /Olga Notes/ }).click();
    await shows(mate.page.getByText('A teammate\'s chat: you may read it, not write in it.'), 'the chat read only');
    await shows(mate.page.getByRole('log', { name: 'Conversation' }).getByText('NOTE: she ordered twice, refund one'),
      'the note, for a teammate too');
    assert.equal(await mate.page.getByRole('button', { name: 'Close chat' }).count(), 0, 'no closing a teammate\'s chat');
    assert.equal(await mate.page.getByRole('list', { name: 'Team chats' }).getByRole('button', { name: /Join/ }).count(), 0,
      'agents do not join');
  } catch (err) {
    await screenshot(admin.page, 'app-notes-failed-admin').catch(() => {});
    await screenshot(desk.page, 'app-notes-failed-agent').catch(() => {});
    await screenshot(customer.page, 'app-notes-failed-customer').catch(() => {});
    throw err;
  } finally {
    await admin.context.close();
    await desk.context.close();
    await customer.context.close();
    await mate.context.close();
    await gql('mutation { updateOrganizationSettings(input: {agentsSeeGroupChats: false}) { id } }', {}, await owner());
    for (const who of [mateEmail]) {
      const signedIn = await gql('mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken } }',
        { e: who }).catch(() => null);
      if (signedIn) await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, signedIn.login.accessToken);
    }
    const data = await gql('mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken } }',
      { e: email }).catch(() => null);
    if (data) await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, data.login.accessToken);
  }
});
