"""PostgreSQL access: migrations, named queries, the connection pool and the embedded server."""
