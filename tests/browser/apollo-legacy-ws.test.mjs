// The legacy graphql-ws subprotocol with the clients that speak it: subscriptions-transport-ws's
// SubscriptionClient (what Apollo iOS and Apollo Kotlin implement by default, and what Apollo
// Client's WebSocketLink wraps) and Apollo Client's WebSocketLink itself, against the real server.
// No browser: these clients run in Node on the `ws` package.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { ApolloClient, InMemoryCache, gql as graphql } from '@apollo/client';
import { WebSocketLink } from '@apollo/client/link/ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

import { BASE, gql, owner, until } from './support.mjs';

const WS_URL = `${BASE.replace(/^http/, 'ws')}/graphql`;

const AGENT_EVENTS = `subscription($since: String) { agentEvents(since: $since) {
  __typename cursor
  ... on RoutingStatusChanged { routingStatus }
} }`;
const STOP_ROUTING = 'mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id routingStatus } }';

/** `ws`, counting the `ka` keep-alives each socket receives and the subprotocol it agreed. */
class CountingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.keepAlives = 0;
    this.addEventListener('message', (event) => {
      if (JSON.parse(String(event.data)).type === 'ka') this.keepAlives += 1;
    });
  }
}

const clients = [];
const tokens = [];
after(async () => {
  for (const client of clients) client.close();
  // Later scenarios route chats to whoever accepts them: these agents leave.
  for (const token of tokens) {
    await gql('mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }', {}, token).catch(() => {});
    await gql('mutation { logout }', {}, token).catch(() => {});
  }
});

let agents = 0;
/** A new agent, signed in and (as their first sign-in makes them) accepting chats; their token. */
async function signedInAgent(name) {
  const email = `legacy${++agents}-${Date.now()}@example.com`;
  await gql('mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }',
    { input: { email, name, password: 'agent-password-1', role: 'AGENT' } }, await owner());
  const data = await gql(
    'mutation($e: String!) { login(input: {email: $e, password: "agent-password-1"}) { accessToken agent { id } } }',
    { e: email });
  tokens.push(data.login.accessToken);
  return { token: data.login.accessToken, id: data.login.agent.id };
}

/** A SubscriptionClient signed in with `token`, with what it heard about its connection. */
function legacyClient(token, options = {}) {
  const heard = { connected: false, connectionError: null, disconnected: false };
  const client = new SubscriptionClient(WS_URL, {
    connectionParams: { authorization: `Bearer ${token}` },
    connectionCallback: (error) => {
      if (error) heard.connectionError = error;
      else heard.connected = true;
    },
    ...options,
  }, CountingWebSocket);
  client.onDisconnected(() => {
    heard.disconnected = true;
  });
  clients.push(client);
  return { client, heard };
}

/** Runs one operation through a SubscriptionClient: its results, and how it ended. */
function operation(client, query, variables = {}) {
  const results = [];
  const outcome = {};
  const subscription = client.request({ query, variables }).subscribe({
    next: (result) => results.push(result),
    error: (error) => {
      outcome.error = error;
    },
    complete: () => {
      outcome.complete = true;
    },
  });
  return { results, outcome, subscription };
}

test('SubscriptionClient: agentEvents, a mutation over start, stop and keep-alives', async () => {
  const ada = await signedInAgent('Legacy Ada');
  const { agentEventsCursor } = await gql('{ agentEventsCursor }', {}, ada.token);
  const { client, heard } = legacyClient(ada.token, { timeout: 2000 });
  await until(() => heard.connected, 'connection_ack');
  assert.equal(client.client.protocol, 'graphql-ws');

  const events = operation(client, AGENT_EVENTS, { since: agentEventsCursor });
  const mutation = operation(client, STOP_ROUTING);
  await until(() => mutation.outcome.complete, 'the mutation to complete');
  assert.equal(mutation.results.length, 1);
  assert.deepEqual(mutation.results[0].data.setRoutingStatus, { id: ada.id, routingStatus: 'NOT_ACCEPTING_CHATS' });
  const changed = await until(
    () => events.results.find((r) => r.data.agentEvents.__typename === 'RoutingStatusChanged'),
    'RoutingStatusChanged on the subscription');
  assert.equal(changed.data.agentEvents.routingStatus, 'NOT_ACCEPTING_CHATS');

  // The server's keep-alives (every 500 ms under run.sh) keep the client's 2 s check happy.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.ok(client.client.keepAlives >= 4, `keep-alives arrived: ${client.client.keepAlives}`);
  assert.equal(heard.disconnected, false, 'the client never gave up on the connection');

  // Unsubscribing sends `stop`: the next change is not delivered. The server reads a socket's
  // messages in order, so once a query sent after `stop` has completed, `stop` has been done.
  events.subscription.unsubscribe();
  const heardBefore = events.results.length;
  const afterStop = operation(client, '{ me { id } }');
  await until(() => afterStop.outcome.complete, 'a query sent after stop');
  await gql('mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }', {}, ada.token);
  await gql(STOP_ROUTING, {}, ada.token);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(events.results.length, heardBefore);
  assert.equal(client.status, WebSocket.OPEN);
});

test('SubscriptionClient: an invalid operation fails alone, a bad token gets connection_error', async () => {
  const ada = await signedInAgent('Legacy Bea');
  await gql(STOP_ROUTING, {}, ada.token);
  const { client, heard } = legacyClient(ada.token);
  await until(() => heard.connected, 'connection_ack');
  const invalid = operation(client, 'subscription { nope }');
  await until(() => invalid.outcome.error, 'the operation error');
  // The client hands its observer the first of the errors in the `error` message.
  assert.equal(invalid.outcome.error.extensions.code, 'GRAPHQL_VALIDATION_FAILED');
  assert.match(invalid.outcome.error.message, /nope/);
  const me = operation(client, '{ me { name } }');
  await until(() => me.outcome.complete, 'the next operation, on the same connection');
  assert.equal(me.results[0].data.me.name, 'Legacy Bea');

  const refused = legacyClient('forged');
  const error = await until(() => refused.heard.connectionError, 'connection_error');
  assert.match(error.message, /^Forbidden/);
  await until(() => refused.heard.disconnected, 'the server to close the socket');
});

test("Apollo Client's WebSocketLink: a subscription and a mutation over graphql-ws", async () => {
  const cy = await signedInAgent('Legacy Cy');
  const link = new WebSocketLink({
    uri: WS_URL,
    options: { connectionParams: { authorization: `Bearer ${cy.token}` } },
    webSocketImpl: WebSocket,
  });
  clients.push(link.subscriptionClient);
  const apollo = new ApolloClient({ link, cache: new InMemoryCache() });

  const names = [];
  const subscription = apollo
    .subscribe({ query: graphql`subscription { me { id name } }`, fetchPolicy: 'no-cache' })
    .subscribe({ next: (result) => names.push(result.data?.me?.name) });
  await until(() => names.includes('Legacy Cy'), 'the current value');

  await gql('mutation($id: ID!) { updateAgent(input: {id: $id, name: "Cy Renamed"}) { id } }',
    { id: cy.id }, await owner());
  await until(() => names.includes('Cy Renamed'), 'the change');

  const { data } = await apollo.mutate({ mutation: graphql(STOP_ROUTING) });
  assert.equal(data.setRoutingStatus.routingStatus, 'NOT_ACCEPTING_CHATS');
  subscription.unsubscribe();
});
