// The Reports screen of the agent web app: the owner narrows the report to a group, reads the
// numbers of its chats as tiles and charts, is told why a period ending before it starts is
// refused, and downloads the numbers per day as CSV.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, USUAL_SETTINGS, agent, gql, group, launch, owner, pageAccessibilityProblems, screenshot, shows,
  widgetKey, widgetSettings, newPage as openPage,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launch();
  await widgetSettings(USUAL_SETTINGS);
});
after(async () => {
  await browser?.close();
});

/** A customer's chat for `groupId`; the customer's token and the chat's id. */
async function customerChat(key, groupId, name, message) {
  const session = await gql(
    'mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }',
    { input: { widgetKey: key, name, pageUrl: 'https://shop.test/' } },
  );
  const token = session.startVisitorSession.token;
  const started = await gql('mutation($m: String!, $g: ID) { startChat(input: {message: $m, groupId: $g}) { id } }',
    { m: message, g: groupId }, token);
  return { token, chatId: started.startChat.id };
}

/** Today in Paris, the browser's time zone in this scenario. */
function today() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris' }).format(new Date());
}

test('reports: the owner reads a group\'s chats as tiles and charts, and downloads them per day as CSV', async () => {
  const groupName = 'Bicycle repairs';
  const groupId = await group(groupName);
  const desk = await agent('Rita Report', { groupIds: [groupId] });
  const { page, context } = await openPage(browser, { timezoneId: 'Europe/Paris' });
  try {
    // Two chats for the group: one answered and rated good, one closed without an answer.
    const key = await widgetKey();
    const answered = await customerChat(key, groupId, 'Ann Answered', 'Where is my parcel?');
    assert.equal(await desk.assignedChat(), answered.chatId);
    await desk.gql('mutation($c: ID!) { sendMessage(input: {chatId: $c, text: "It leaves today."}) { id } }',
      { c: answered.chatId });
    await desk.gql('mutation($c: ID!) { closeChat(chatId: $c) { id } }', { c: answered.chatId });
    await gql('mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD}) { id } }', { c: answered.chatId },
      answered.token);
    const missed = await customerChat(key, groupId, 'Max Missed', 'Hello?');
    await desk.gql('mutation($c: ID!) { closeChat(chatId: $c) { id } }', { c: missed.chatId });
    const expected = await gql('query($i: ReportInput!) { report(input: $i) { totals { chatsStarted chatsAnswered' +
      ' chatsMissed ratedGood ratedBad } } }',
    { i: { from: today(), to: today(), timeZone: 'Europe/Paris', groupId } }, await owner());
    assert.deepEqual(expected.report.totals, { chatsStarted: 2, chatsAnswered: 1, chatsMissed: 1, ratedGood: 1, ratedBad: 0 });

    await page.goto(`${BASE}/app`);
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill(OWNER_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await shows(page.getByRole('switch', { name: 'Accept chats' }), 'the app signed in');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Reports' }).click();
    await shows(page.getByRole('heading', { name: 'Reports', level: 2 }), 'the reports screen');
    const tile = (name) => page.locator('.tile', { has: page.locator('dt', { hasText: new RegExp(`^${name}$`) }) })
      .locator('dd');
    await shows(tile('Chats started'), 'the tiles');

    // Narrowed to the scenario's group: exactly its two chats.
    const groups = page.getByLabel('Group', { exact: true });
    await shows(groups.locator('option', { hasText: groupName }), 'the group among the choices', { state: 'attached' });
    await groups.selectOption({ label: groupName });
    await shows(tile('Chats started').filter({ hasText: /^2$/ }), 'the group\'s chats counted');
    assert.equal(await tile('Chats started').textContent(), '2');
    assert.equal(await tile('Answered').textContent(), '1');
    assert.equal(await tile('Missed').textContent(), '1');
    assert.match(await tile('Satisfaction').textContent(), /^1 good · 0 bad50% rated$/);
    assert.match(await tile('First response time').textContent(), /\d+(\.\d)? s|m/);
    assert.ok(await page.getByLabel('Agent', { exact: true }).count(), 'the owner may pick an agent');
    const perDay = page.getByRole('img', { name: /^Chats per day: 7 days: 2 started, 1 answered, 1 missed/ });
    await shows(perDay, 'the chats-per-day chart with its summary');
    assert.equal(await perDay.evaluate((node) => node.tagName.toLowerCase()), 'svg');
    await shows(page.getByRole('img', { name: /^First response time per day: answered chats on 1 day/ }),
      'the first-response chart');
    const agents = page.getByRole('table', { name: 'Per agent' });
    await shows(agents.getByRole('row', { name: /Rita Report 2 1 1 0/ }), 'the agent\'s row');
    await screenshot(page, 'app-reports-1-group');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the reports screen');

    // The CSV per day arrives as a file with the export's header and the period's days.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'CSV: Per day' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^report-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d-day\.csv$/);
    const csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
    assert.match(csv[0], /^date,chats_started,chats_answered,chats_missed,/);
    assert.equal(csv.length, 8, 'a header and 7 days');
    assert.match(csv.at(-1), new RegExp(`^${today()},2,1,1,`));

    // A period that ends before it starts: the server's reason, shown in the page.
    await page.getByLabel('To', { exact: true }).fill('2020-01-01');
    await shows(page.getByRole('alert').filter({ hasText: 'is before its start' }), 'the bad period explained');
    await page.getByRole('button', { name: 'Last 30 days' }).click();
    await shows(page.getByRole('img', { name: /^Chats per day: 30 days: 2 started/ }), 'the last 30 days');
  } finally {
    await context.close();
    await desk.leave();
  }
});

test('reports: a plain agent sees their own numbers, with no agent to pick', async () => {
  const email = `reports-agent-${Date.now()}@example.com`;
  await group('Tyres');
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name: 'Paul Plain', password: 'agent-password-1', role: 'AGENT' } }, await owner());
  // Paul takes no chats, now or after this scenario: later ones count on who is available.
  const login = await gql('mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken } }',
    { e: email });
  const token = login.login.accessToken;
  await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, token);
  const { page, context } = await openPage(browser, { timezoneId: 'Europe/Paris' });
  try {
    await page.goto(`${BASE}/app/#/reports`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('agent-password-1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Reports' }).click();
    await shows(page.getByText(/^Your chats started from /), 'the agent\'s own report');
    await shows(page.getByLabel('Group', { exact: true }).locator('option', { hasText: 'Tyres' }),
      'the groups to narrow to', { state: 'attached' });
    assert.equal(await page.getByLabel('Agent', { exact: true }).count(), 0, 'no agent filter for an agent');
    const chats = page.locator('.tile', { has: page.locator('dt', { hasText: /^Chats started$/ }) }).locator('dd');
    assert.equal(await chats.textContent(), '0');
    await shows(page.getByRole('img', { name: /^Chats per day: 7 days: 0 started/ }), 'an empty chart, said so');
  } finally {
    await context.close();
    await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, token).catch(() => {});
    await gql('mutation { logout }', {}, token).catch(() => {});
  }
});
