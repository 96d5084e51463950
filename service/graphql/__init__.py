"""The GraphQL API generated from the table models, each operation compiled to SQL."""
