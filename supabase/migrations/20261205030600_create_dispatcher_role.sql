-- Why (issue 19 item 13): the dispatch function connected as `postgres`,
-- which can read every document and rewrite any row, though dispatch only
-- reads the backlog and records the tasks it started. The `dispatcher`
-- role may execute exactly those two functions and nothing else; the
-- dispatch function's SUPABASE_DB_URL names a login in this role
-- (`create role dispatch_login login password '...' in role dispatcher`,
-- run by the operator: no secret lives in a migration).

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'dispatcher') then
    create role dispatcher nologin;
  end if;
exception
  -- Roles are cluster-wide: two databases migrated at once may race here.
  when duplicate_object then null;
end
$$;

comment on role dispatcher is
  'The dispatch edge function: may read the backlog (queue.queue_backlog) and record a started task (queue.record_task_started), nothing else.';

grant usage on schema queue to dispatcher;
grant execute on function queue.queue_backlog() to dispatcher;
grant execute on function queue.record_task_started(text, text, text, text, numeric, numeric, timestamptz) to dispatcher;
