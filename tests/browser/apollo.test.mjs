// Apollo's own client and graphql-js's schema tooling against the real server at its defaults:
// Apollo Client's persisted-queries link (hash first, the text after PERSISTED_QUERY_NOT_FOUND,
// the hash alone once registered; over POST and GET), and the introspection query
// graphql-codegen and get-graphql-schema send, turned back into the schema the server serves.
// No browser: these clients run in Node.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
} from 'graphql';

import { BASE, owner } from './support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** An Apollo Client with the persisted-queries link, and every request it sent. */
function apolloClient(token, { useGETForHashedQueries = false } = {}) {
  const sent = [];
  const recordingFetch = async (url, init = {}) => {
    const address = new URL(String(url));
    const body = init.body ? JSON.parse(String(init.body)) : null;
    sent.push({
      method: init.method ?? 'GET',
      query: body ? body.query : address.searchParams.get('query'),
      persisted: Boolean(body?.extensions?.persistedQuery ?? address.searchParams.get('extensions')),
    });
    const response = await fetch(url, init);
    sent.at(-1).status = response.status;
    return response;
  };
  const http = new HttpLink({
    uri: `${BASE}/graphql`,
    headers: { authorization: `Bearer ${token}` },
    fetch: recordingFetch,
  });
  const link = new PersistedQueryLink({ sha256, useGETForHashedQueries }).concat(http);
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return { client, sent };
}

test('Apollo Client with persisted queries falls back to the text once, then sends the hash alone', async () => {
  const token = await owner();
  // A query no other scenario sends, so the server has not registered it yet.
  const query = gql`
    query ApolloPersistedOrganization {
      organization {
        name
      }
    }
  `;
  const first = apolloClient(token);
  const { data } = await first.client.query({ query, fetchPolicy: 'network-only' });
  assert.equal(data.organization.name, 'My Company');
  assert.deepEqual(
    first.sent.map(({ method, query: text, persisted, status }) => [method, Boolean(text), persisted, status]),
    [
      ['POST', false, true, 200], // the hash alone: PERSISTED_QUERY_NOT_FOUND
      ['POST', true, true, 200], // the text with its hash
    ],
  );

  // Another client (a new app start) sends the hash alone, and it is enough.
  const second = apolloClient(token);
  const again = await second.client.query({ query, fetchPolicy: 'network-only' });
  assert.equal(again.data.organization.name, 'My Company');
  assert.equal(second.sent.length, 1);
  assert.equal(second.sent[0].query, undefined);
});

test('Apollo Client sends hashed queries over GET when asked to', async () => {
  const token = await owner();
  const query = gql`
    query ApolloPersistedOverGet {
      me {
        email
      }
    }
  `;
  const client = apolloClient(token, { useGETForHashedQueries: true });
  const { data } = await client.client.query({ query, fetchPolicy: 'network-only' });
  assert.equal(data.me.email, 'owner@example.com');
  assert.equal(client.sent[0].method, 'GET');
  assert.equal(client.sent[0].query, null);
  assert.equal(client.sent[0].status, 200);

  const again = apolloClient(token, { useGETForHashedQueries: true });
  await again.client.query({ query, fetchPolicy: 'network-only' });
  assert.deepEqual(again.sent.map(({ method, query: text }) => [method, text]), [['GET', null]]);
});

test('the introspection query of schema tools gives back the schema the server serves', async () => {
  // As graphql-codegen, get-graphql-schema and Apollo's tooling send it, anonymously.
  const query = getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    oneOf: true,
  });
  const response = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, operationName: 'IntrospectionQuery' }),
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));

  // async-graphql answers __schema.description with its own text rather than null, as the
  // schema has none; it is no part of what the server serves.
  assert.match(body.data.__schema.description, /^A GraphQL Schema defines/);
  body.data.__schema.description = null;
  // schema.graphql (async-graphql's SDL) leaves out @specifiedBy, which introspection gives.
  const dateTime = body.data.__schema.types.find((type) => type.name === 'DateTime');
  assert.equal(dateTime.specifiedByURL, 'https://datatracker.ietf.org/doc/html/rfc3339');
  dateTime.specifiedByURL = null;
  const introspected = lexicographicSortSchema(buildClientSchema(body.data));
  const checkedIn = lexicographicSortSchema(
    buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8')),
  );
  assert.equal(printSchema(introspected), printSchema(checkedIn));
});
