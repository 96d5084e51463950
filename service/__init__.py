"""A GraphQL API generated from SQLModel table models, served over PostgreSQL with RLS."""
