-- Why: insert hints share the update hints' throttle since 20261205030200,
-- but one second is long for a person who adds a request right after
-- another hint: a suppressed insert hint waits for the pg_cron tick (up to
-- a minute) when the dispatch of the hint before it had already read the
-- backlog. Inserts get their own, shorter gap (min_insert_interval, 250 ms
-- by default): a storm of single-row inserts still sends at most four
-- hints a second, and an insert a person makes is heard at once unless
-- another hint went out a quarter of a second before (whose dispatch then
-- most likely has not read the backlog yet).

alter table private.dispatch_hint_throttle
  add column if not exists min_insert_interval interval not null default interval '250 milliseconds';

comment on column private.dispatch_hint_throttle.min_insert_interval is
  'Shortest gap between a hint and an insert-driven hint (inserts are what people wait on); ''0'' hints on every insert statement.';

-- As take_dispatch_hint_slot, with the insert gap.
create or replace function private.take_dispatch_hint_slot_for_insert()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  taken boolean;
begin
  with due as (
    select t.singleton
    from private.dispatch_hint_throttle t
    where t.last_sent_at <= clock_timestamp() - t.min_insert_interval
    for update skip locked
  )
  update private.dispatch_hint_throttle t
  set last_sent_at = clock_timestamp()
  from due
  where t.singleton = due.singleton
  returning true into taken;
  return coalesce(taken, false);
end
$$;

revoke all on function private.take_dispatch_hint_slot_for_insert() from public;

create or replace function private.hint_dispatch_after_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  available_jobs integer;
begin
  select count(*) into available_jobs
  from inserted_jobs j
  where j.status_id in (1, 3) and j.available_at <= now();
  if available_jobs > 0 and private.take_dispatch_hint_slot_for_insert() then
    perform private.invoke_edge_function('dispatch', jsonb_build_object(
      'reason', 'insert', 'source', 'extraction_queue', 'jobs', available_jobs));
  end if;
  return null;
end
$$;

revoke all on function private.hint_dispatch_after_insert() from public;
