"""HTTP endpoints: GraphQL, health probes, metrics, GraphiQL."""
