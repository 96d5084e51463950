"""The database layer: connection URLs, pools, per-transaction context, migrations."""
