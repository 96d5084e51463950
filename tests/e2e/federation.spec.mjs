// Apollo Gateway (the npm packages @apollo/gateway and @apollo/server, unmodified) composing the
// service, run with FEDERATION=true, with a second subgraph (tests/e2e/reviews_subgraph.py) from
// their `_service { sdl }`, then answering operations that cross both over real HTTP. The caller's
// Authorization header is forwarded to the subgraphs, as a gateway in front of an RLS service must.
// The summary is printed as one JSON line for tests/http/test_federation_gateway.py to check.
//   FEDERATION_E2E_BLOG_URL=http://127.0.0.1:8000/graphql FEDERATION_E2E_REVIEWS_URL=... \
//   FEDERATION_E2E_TOKEN=... FEDERATION_E2E_FIRST=10 node tests/e2e/federation.spec.mjs
import { createRequire } from "node:module";

// The packages live in graphiql/node_modules (graphiql/package.json's devDependencies).
const require = createRequire(new URL("../../graphiql/package.json", import.meta.url));
const { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } = require("@apollo/gateway");
const { ApolloServer } = require("@apollo/server");
const { startStandaloneServer } = require("@apollo/server/standalone");

const env = process.env;
// What the gateway and the server complain about (composition hints included), for the report.
const logged = [];
const logger = {
  debug() {},
  info() {},
  warn: (message) => logged.push(`warn: ${message}`),
  error: (message) => logged.push(`error: ${message}`),
};

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    // absent when the gateway itself asks (IntrospectAndCompose's `_service` requests)
    if (context?.authorization) request.http.headers.set("authorization", context.authorization);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: [
      { name: "blog", url: env.FEDERATION_E2E_BLOG_URL },
      { name: "reviews", url: env.FEDERATION_E2E_REVIEWS_URL },
    ],
  }),
  buildService: ({ url }) => new ForwardingDataSource({ url }),
  logger,
});
const server = new ApolloServer({ gateway, logger });

const REVIEWS = `query Reviews {
  reviews { body post { id title author { id email } } }
}`;
const POSTS = `query Posts($first: Int!) {
  posts(first: $first) { nodes { id title reviews { body } } }
}`;

// a page from each subgraph, both with the PageInfo type the two subgraphs share
const PAGES = `query Pages {
  posts(first: 1) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
  reviewPage(first: 1) {
    nodes { body }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

async function run(url, query, variables, authorization) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization && { authorization }) },
    body: JSON.stringify({ query, variables }),
  });
  const { data = null, errors = null } = await response.json();
  return { status: response.status, data, errors };
}

const summary = { composition: null, operations: {}, logged };
let url;
try {
  // starting the server loads the gateway: introspects both subgraphs and composes them
  ({ url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port: 0 },
    context: async ({ req }) => ({ authorization: req.headers.authorization }),
  }));
} catch (error) {
  summary.composition = String(error?.stack ?? error);
}
if (url) {
  const bearer = `Bearer ${env.FEDERATION_E2E_TOKEN}`;
  summary.operations = {
    // (a) the reviews subgraph's root field; each post's fields from the service's `_entities`
    reviews: await run(url, REVIEWS),
    // (b) the service's root field; each post's reviews from the reviews subgraph's `_entities`
    posts: await run(url, POSTS, { first: Number(env.FEDERATION_E2E_FIRST) }),
    // (c) as (a), as the draft's author: the forwarded token lets the service show the draft
    reviewsAsAuthor: await run(url, REVIEWS, undefined, bearer),
    // (d) PageInfo from both subgraphs in one operation
    pages: await run(url, PAGES),
  };
  await server.stop();
}
console.log(JSON.stringify(summary));
