// The worker of the GraphQL editor (validation, completion against the schema).
import 'monaco-graphql/esm/graphql.worker.js';
