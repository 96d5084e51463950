// Apollo Client (the npm package, unmodified) against the running service: its persisted-query
// link with hashed queries over GET, its BatchHttpLink, and its GraphQLWsLink (graphql-ws) for
// a live subscription; and graphql-sse's client for a subscription over Server-Sent Events. Every HTTP exchange is recorded;
// the summary is printed as one JSON line for tests/http/test_apollo_client.py to check.
//   APOLLO_E2E_BASE_URL=http://127.0.0.1:8000 APOLLO_E2E_TOKEN=... node tests/e2e/apollo.spec.mjs
import { createHash } from "node:crypto";
import { createRequire } from "node:module";

// The packages live in graphiql/node_modules (graphiql/package.json's devDependencies).
const require = createRequire(new URL("../../graphiql/package.json", import.meta.url));
const { ApolloClient, ApolloLink, InMemoryCache, HttpLink, gql } = require("@apollo/client");
const { BatchHttpLink } = require("@apollo/client/link/batch-http");
const { createPersistedQueryLink } = require("@apollo/client/link/persisted-queries");
const { GraphQLWsLink } = require("@apollo/client/link/subscriptions");
const { createClient } = require("graphql-ws");
const { createClient: createSseClient } = require("graphql-sse");

const base = process.env.APOLLO_E2E_BASE_URL;
const token = process.env.APOLLO_E2E_TOKEN;
const uri = `${base}/graphql`;

const exchanges = [];
async function recordingFetch(url, options = {}) {
  const response = await fetch(url, options);
  const text = await response.clone().text();
  const sent = options.body ? JSON.parse(options.body) : null;
  const query = new URL(url).searchParams;
  exchanges.push({
    method: options.method || "GET",
    sentQuery: Array.isArray(sent) ? sent.map((s) => "query" in s) : sent ? "query" in sent : query.has("query"),
    batchSize: Array.isArray(sent) ? sent.length : null,
    hashed: Boolean(
      (sent && !Array.isArray(sent) && sent.extensions?.persistedQuery) ||
        query.get("extensions")?.includes("persistedQuery"),
    ),
    status: response.status,
    body: JSON.parse(text),
  });
  return response;
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const COUNT = gql`
  query Count {
    posts {
      totalCount
    }
  }
`;

async function persistedQueries() {
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
      new HttpLink({ uri, fetch: recordingFetch }),
    ),
  });
  const first = await client.query({ query: COUNT, fetchPolicy: "network-only" });
  const second = await client.query({ query: COUNT, fetchPolicy: "network-only" });
  return { results: [first.data, second.data], exchanges: exchanges.splice(0) };
}

async function batches() {
  const auth = new ApolloLink((operation, forward) => {
    operation.setContext({ headers: { authorization: `Bearer ${token}` } });
    return forward(operation);
  });
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: auth.concat(new BatchHttpLink({ uri, batchMax: 10, batchInterval: 20, fetch: recordingFetch })),
  });
  const create = gql`
    mutation Create($title: String!) {
      createPost(input: { title: $title, content: "from Apollo" }) {
        title
      }
    }
  `;
  const titles = gql`
    query Titles {
      posts(orderBy: [{ title: ASC }]) {
        nodes {
          title
        }
      }
    }
  `;
  // issued together: one request carries all three, answered in order
  const [made, count, listed] = await Promise.all([
    client.mutate({ mutation: create, variables: { title: "Batched" } }),
    client.query({ query: COUNT, fetchPolicy: "network-only" }),
    client.query({ query: titles, fetchPolicy: "network-only" }),
  ]);
  return { results: [made.data, count.data, listed.data], exchanges: exchanges.splice(0) };
}

async function subscriptions() {
  // Node's own WebSocket; the token travels in connection_init, as a browser app sends it.
  const ws = createClient({
    url: uri.replace(/^http/, "ws"),
    connectionParams: { Authorization: `Bearer ${token}` },
  });
  const client = new ApolloClient({ cache: new InMemoryCache(), link: new GraphQLWsLink(ws) });
  const http = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({ uri, headers: { authorization: `Bearer ${token}` } }),
  });
  const live = gql`
    subscription Drafts {
      posts(filter: { title: { startsWith: "Live" } }) {
        totalCount
      }
    }
  `;
  const values = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; values ${JSON.stringify(values)}`)), 20_000);
    const subscription = client.subscribe({ query: live }).subscribe({
      next: ({ data, error }) => {
        if (error) reject(error);
        values.push(data);
        if (values.length === 1) {
          // the author's unpublished post: only their own subscription can see it
          const create = gql`
            mutation {
              createPost(input: { title: "Live draft", content: "-" }) {
                title
              }
            }
          `;
          http.mutate({ mutation: create }).catch(reject);
        } else {
          clearTimeout(timer);
          subscription.unsubscribe();
          resolve();
        }
      },
      error: reject,
    });
  });
  await ws.dispose();
  return { values };
}

async function eventStreams() {
  // graphql-sse's own client (distinct connections mode): Accept: text/event-stream, the
  // token in a header as for any request
  const sse = createSseClient({ url: uri, headers: { authorization: `Bearer ${token}` } });
  const once = await new Promise((resolve, reject) => {
    let result;
    sse.subscribe(
      { query: "query Once { posts(filter: { title: { startsWith: \"Live\" } }) { totalCount } }" },
      { next: (value) => (result = value), error: reject, complete: () => resolve(result) },
    );
  });
  const values = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; values ${JSON.stringify(values)}`)), 20_000);
    const stop = sse.subscribe(
      { query: "subscription Streamed { posts(filter: { title: { startsWith: \"Live\" } }) { totalCount } }" },
      {
        next: (value) => {
          values.push(value);
          if (values.length === 1) {
            fetch(uri, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
              body: JSON.stringify({ query: 'mutation { createPost(input: { title: "Live stream", content: "-" }) { id } }' }),
            }).catch(reject);
          } else {
            clearTimeout(timer);
            stop();
            resolve();
          }
        },
        error: reject,
        complete: () => {},
      },
    );
  });
  sse.dispose();
  return { once, values };
}

const summary = {
  persisted: await persistedQueries(),
  batches: await batches(),
  subscriptions: await subscriptions(),
  eventStreams: await eventStreams(),
};
console.log(JSON.stringify(summary));
