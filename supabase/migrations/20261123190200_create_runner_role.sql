-- Why: runners (registre and OCR tasks) connect to Postgres with a role that
-- can only execute the job transition functions, so a leaked runner
-- credential can neither read documents nor rewrite job state by hand. Each
-- function's migration grants it to `runner` explicitly.
--
-- The role is created without login and without a password: the operator
-- (or the local stack) runs `alter role runner with login password '...'`
-- separately, so no secret ever lives in a migration.

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'runner') then
    create role runner nologin;
  end if;
exception
  -- Roles are cluster-wide: two databases migrated at once may race here.
  when duplicate_object then null;
end
$$;

comment on role runner is
  'Registre and OCR runners: may execute the transition functions in schema queue, nothing else.';

grant usage on schema queue to runner;
grant usage on schema queue to service_role;
