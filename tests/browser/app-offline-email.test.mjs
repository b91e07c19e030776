// Offline messages by email in the agent web app: a customer leaves an offline message, the
// agent answers it in the app, the app shows the answer, its email state and the message
// handled; the suite's SMTP server (smtp-sink.mjs, started by run.sh) received the emails.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  BASE, OWNER_PASSWORD, gql, launch, pageAccessibilityProblems, screenshot, shows, until, widgetKey,
  newPage as openPage,
} from './support.mjs';

const MAIL = process.env.SWITCHBOARD_MAIL_DIR;

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** The emails the SMTP sink received so far, each as its raw text. */
function mails() {
  return readdirSync(MAIL).filter((name) => name.endsWith('.eml')).sort()
    .map((name) => readFileSync(join(MAIL, name), 'utf8'));
}

test('offline messages by email: the agent answers in the app, the customer gets the email, the app shows it answered', async () => {
  assert.ok(MAIL, 'run.sh sets SWITCHBOARD_MAIL_DIR');
  const marker = Date.now() % 1000000;
  const name = `Petra Post ${marker}`;
  const customerEmail = `petra${marker}@customer.test`;
  const session = await gql('mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }',
    { input: { widgetKey: await widgetKey(), name } });
  await gql('mutation($input: LeaveOfflineMessageInput!) { leaveOfflineMessage(input: $input) { id } }', {
    input: { name, email: customerEmail, text: 'Do you ship to Norway?' },
  }, session.startVisitorSession.token);
  // The owner was emailed of it, with the customer to reply to: one email per agent who may
  // read it (other scenarios add agents), so look for the owner's.
  const notification = await until(() => mails().find((m) => m.includes(`Reply-To: ${customerEmail}`)
    && /X-Envelope-To: owner@example\.com/.test(m)), 'the owner\'s email about the offline message');
  assert.match(notification, /Do you ship to Norway\?/);

  const { context, page } = await openPage(browser);
  try {
    await page.goto(`${BASE}/app/`);
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill(OWNER_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await shows(page.getByRole('switch', { name: 'Accept chats' }), 'the app signed in');
    await page.getByRole('link', { name: /Offline messages/ }).click();
    const offline = page.getByRole('list', { name: 'Offline messages' });
    const row = offline.getByRole('listitem').filter({ hasText: 'Do you ship to Norway?' });
    await shows(row, 'the offline message');
    await shows(row.getByRole('button', { name: `Mark handled: ${name}` }), 'the message not handled yet');

    await row.getByLabel(`Reply by email to ${name}`).fill('Yes, we ship to Norway within 5 days.');
    await row.getByRole('button', { name: 'Send by email' }).click();
    const replies = row.getByRole('list', { name: `Replies to ${name}` });
    await shows(replies.getByText('Yes, we ship to Norway within 5 days.'), 'the reply under the message');
    await shows(row.getByRole('button', { name: `Mark not handled: ${name}` }), 'the message handled');
    await shows(replies.getByText('Email sent'), 'the email sent', { timeout: 15000 });
    assert.equal(await row.getByLabel(`Reply by email to ${name}`).inputValue(), '', 'the box emptied');
    await screenshot(page, 'app-offline-email-01-answered');
    assert.deepEqual(await pageAccessibilityProblems(page), [], 'axe: the offline messages with a reply');

    // The customer got the answer by email.
    const answer = await until(() => mails().find((m) => m.includes(`X-Envelope-To: ${customerEmail}`)),
      'the reply email');
    assert.match(answer, /Subject: Re: Your message to /);
    assert.match(answer, /In-Reply-To: <offline-/);
    assert.match(answer, /Yes, we ship to Norway within 5 days\./);

    // An empty reply is not sent.
    await row.getByRole('button', { name: 'Send by email' }).click();
    assert.equal(await replies.getByRole('listitem').count(), 1, 'nothing sent for an empty box');
  } finally {
    await context.close();
  }
});
