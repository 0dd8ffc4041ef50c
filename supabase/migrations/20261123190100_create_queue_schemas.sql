-- Why: runners must reach job state only through functions, never through
-- tables. `queue` holds those functions and is the one schema a runner may
-- use; `private` holds helpers that only the owner calls (the edge-function
-- call, trigger functions, the retry policy). Neither schema is exposed by
-- the Data API, so anon and authenticated cannot reach them over PostgREST.

create schema if not exists queue;
create schema if not exists private;

comment on schema queue is
  'Job transition functions (claim, heartbeat, complete, fail, release, reap, retry) and the dispatcher''s backlog query. The runner role may use this schema and nothing else.';
comment on schema private is
  'Internal helpers of the queue: the edge-function call, trigger functions, lease fencing and the retry policy. Not granted to any client role.';

revoke all on schema queue from public;
revoke all on schema private from public;

-- Postgres grants execute on every new function to PUBLIC (and a per-schema
-- default privilege cannot take that back), so each migration that creates
-- a function revokes it from PUBLIC and grants it to the roles that need it.
