-- Run once by the postgres image when it creates the database (docker-entrypoint-initdb.d).
-- Behind PgBouncer in transaction mode the service cannot set statement_timeout when it
-- connects; a role default applies to every server connection PgBouncer opens.
ALTER ROLE service SET statement_timeout = '15s';
