-- Why: every finished extraction and every requeue sends a dispatch hint. At
-- a thousand completions a second that is a thousand HTTP calls (pg_net is
-- meant for a few hundred a second) and a thousand dispatches planning the
-- same backlog. Hints caused by updates are therefore throttled to one per
-- interval; inserts (people adding requests) still hint at once. A
-- suppressed hint loses nothing: the runners already running claim the
-- work, the next hint plans with the whole backlog, and the pg_cron tick is
-- the guarantee.

create table if not exists private.dispatch_hint_throttle (
  singleton boolean primary key default true check (singleton),
  -- Shortest gap between two update-driven hints; '0' hints on every change.
  min_interval interval not null default interval '1 second',
  last_sent_at timestamptz not null default '-infinity'
);
alter table private.dispatch_hint_throttle enable row level security;
revoke all on table private.dispatch_hint_throttle from public;
insert into private.dispatch_hint_throttle default values on conflict do nothing;

comment on table private.dispatch_hint_throttle is
  'One row: when the last update-driven dispatch hint went out, and the shortest gap between two (min_interval; set it to ''0'' to hint on every change).';

-- True when this transaction may send an update-driven hint now, and records
-- it. `skip locked`: while another transaction is taking the slot, this one
-- does not wait for it; that transaction's hint covers both.
create or replace function private.take_dispatch_hint_slot()
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  with due as (
    select t.singleton
    from private.dispatch_hint_throttle t
    where t.last_sent_at <= clock_timestamp() - t.min_interval
    for update skip locked
  ),
  taken as (
    update private.dispatch_hint_throttle t
    set last_sent_at = clock_timestamp()
    from due
    where t.singleton = due.singleton
    returning true as taken
  )
  select coalesce((select taken from taken), false)
$$;

revoke all on function private.take_dispatch_hint_slot() from public;

-- As in create_dispatch_hints, with the throttle in front of the call.
create or replace function private.hint_dispatch_after_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  requeued integer;
  ready_for_ocr integer;
begin
  select count(*) filter (where n.status_id = 1 or o.status_id <> 2),
         count(*) filter (where n.status_id = 3 and o.status_id = 2)
    into requeued, ready_for_ocr
  from updated_jobs_after n
  join updated_jobs_before o on o.id = n.id
  where n.status_id in (1, 3)
    and n.status_id is distinct from o.status_id
    and n.available_at <= now();
  if requeued + ready_for_ocr > 0 and private.take_dispatch_hint_slot() then
    perform private.invoke_edge_function('dispatch', jsonb_build_object(
      'reason', case when requeued > 0 then 'requeued' else 'ready-for-ocr' end,
      'source', 'extraction_queue',
      'jobs', requeued + ready_for_ocr));
  end if;
  return null;
end
$$;

revoke all on function private.hint_dispatch_after_update() from public;
