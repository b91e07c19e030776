// @ts-check
// Switchboard's GraphiQL. Queries and mutations go over HTTP to the address the page is served
// from (/graphql), subscriptions over the WebSocket at the same address (graphql-transport-ws).
// Both carry the Authorization header from GraphiQL's Headers tab: over HTTP as the header, over
// the WebSocket in connection_init's payload as {"authorization": "Bearer …"}, which is where
// the server reads it (src/http/ws.rs).

/** The UMD builds the page loads before this file define these. */
const { React, ReactDOM, GraphiQL, graphqlWs } = /** @type {any} */ (window);

const httpUrl = `${location.origin}${location.pathname}`;
const wsUrl = httpUrl.replace(/^http/, 'ws');

const DEFAULT_QUERY = `# Switchboard's GraphQL API. The Docs button (book icon, top left) lists every type and field.
#
# 1. Sign in: put your email and password in the login mutation below and run it
#    (the ▶ button, then SignIn).
# 2. Open the Headers tab below and paste the accessToken from the result:
#      { "Authorization": "Bearer <accessToken>" }
#    It goes with every query and mutation, and subscriptions send it when they connect.
# 3. Run Me, or a subscription: the live events arrive in the result pane, e.g.
#      subscription { agentEvents { __typename cursor } }

mutation SignIn {
  login(input: {email: "owner@example.com", password: ""}) {
    accessToken
    accessTokenExpiresAt
  }
}

query Me {
  me { email name role routingStatus }
}
`;

/** What a subscription without a token gets, as the server answers operations that need one. */
const SIGN_IN_FIRST = {
  errors: [{
    message: 'Subscriptions need a token: sign in, then put ' +
      '{"Authorization": "Bearer <accessToken>"} in the Headers tab.',
    extensions: { code: 'UNAUTHENTICATED' },
  }],
};

/**
 * The WebSocket client for one Authorization value. A new value (a new token) gets a new
 * connection, and the old one closes with its subscriptions: each socket is signed in once,
 * when it connects.
 */
let socket = { authorization: '', client: null };

/** @param {string} authorization */
function socketFor(authorization) {
  if (socket.authorization !== authorization || !socket.client) {
    socket.client?.dispose();
    socket = {
      authorization,
      client: graphqlWs.createClient({
        url: wsUrl,
        connectionParams: { authorization },
        // 4401 and 4403: the token was refused or has expired; the same token cannot do better.
        shouldRetry: (/** @type {any} */ event) => !(event?.code === 4401 || event?.code === 4403),
        retryAttempts: 3,
      }),
    };
  }
  return socket.client;
}

/**
 * The Authorization header in the Headers tab, whatever its capitalisation.
 * @param {Record<string, unknown> | undefined} headers
 */
function authorizationOf(headers) {
  const entry = Object.entries(headers || {}).find(([name]) => name.toLowerCase() === 'authorization');
  return entry && typeof entry[1] === 'string' ? entry[1].trim() : '';
}

/**
 * Whether the operation to run is a subscription.
 * @param {{operationName?: string}} params
 * @param {{documentAST?: {definitions: any[]}} | undefined} options
 */
function isSubscription(params, options) {
  return (options?.documentAST?.definitions || []).some((definition) =>
    definition.kind === 'OperationDefinition' && definition.operation === 'subscription' &&
    (!params.operationName || definition.name?.value === params.operationName));
}

/**
 * GraphiQL's fetcher, made for the headers of each run. Without a token a subscription is
 * answered here: the server would only close the socket.
 * @param {{operationName?: string}} params
 * @param {{headers?: Record<string, unknown>, documentAST?: {definitions: any[]}} | undefined} options
 */
function fetcher(params, options) {
  const authorization = authorizationOf(options?.headers);
  if (!authorization && isSubscription(params, options)) return Promise.resolve(SIGN_IN_FIRST);
  const wsClient = authorization ? socketFor(authorization) : undefined;
  return GraphiQL.createFetcher({ url: httpUrl, wsClient })(params, options);
}

ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: DEFAULT_QUERY,
    defaultEditorToolsVisibility: 'headers',
  }),
);
