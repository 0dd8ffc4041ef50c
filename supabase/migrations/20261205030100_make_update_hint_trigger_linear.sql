-- Why: the statement-level update hint trigger joins its two transition
-- tables (old and new rows) by id. They carry no statistics, and PL/pgSQL
-- caches the query's plan per session: after the usual single-row
-- transitions it keeps a nested loop, so a bulk UPDATE of n rows cost n²
-- (20,000 rows: 29 s, every row locked meanwhile). With nested loops off
-- for this function alone, the join is a hash (or merge) join whatever the
-- cached estimate: linear in the rows the statement touched. ALTER FUNCTION
-- ... SET is idempotent and keeps the body as it is.

alter function private.hint_dispatch_after_update() set enable_nestloop = off;
