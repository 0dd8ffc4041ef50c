-- Why: when work becomes available (a job inserted, a job back to waiting
-- after a failure, release or reaped lease, a PDF ready for OCR) the
-- dispatch function should hear about it at once instead of at the next
-- minute tick. The triggers are statement-level with transition tables, so
-- a statement touching 1,000 rows sends one hint, not 1,000 requests
-- (pg_net is meant for a few hundred requests a second at most). A hint may
-- be lost; the pg_cron tick (private.dispatch_tick) is the guarantee.
--
-- Hint body: {"reason": "insert" | "requeued" | "ready-for-ocr" | "tick",
--             "source": "extraction_queue" | "pg_cron", "jobs": <count>}.
-- Rows still backing off (`available_at` in the future) do not count: a
-- hint for them would find nothing to claim; the tick picks them up later.
--
-- Hints caused by updates are throttled to one per interval: at a thousand
-- completions a second, one hint each would be a thousand HTTP calls and a
-- thousand dispatches planning the same backlog. Inserts (people adding
-- requests) still hint at once. A suppressed hint loses nothing: runners
-- already running claim the work, the next hint plans with the whole
-- backlog, and the tick is the guarantee.

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
-- does not wait for it; that transaction's hint covers both. PL/pgSQL, so
-- its plan is cached per session.
create or replace function private.take_dispatch_hint_slot()
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
    where t.last_sent_at <= clock_timestamp() - t.min_interval
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

revoke all on function private.take_dispatch_hint_slot() from public;


-- After an insert statement: one hint when it added claimable jobs.
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
  if available_jobs > 0 then
    perform private.invoke_edge_function('dispatch', jsonb_build_object(
      'reason', 'insert', 'source', 'extraction_queue', 'jobs', available_jobs));
  end if;
  return null;
end
$$;

-- After an update statement: one hint when it moved jobs into a waiting
-- status (→ 1 or → 3) and they are claimable now, unless one went out less
-- than the throttle's interval ago.
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

drop trigger if exists extraction_queue_hint_dispatch_after_insert on public.extraction_queue;
create trigger extraction_queue_hint_dispatch_after_insert
  after insert on public.extraction_queue
  referencing new table as inserted_jobs
  for each statement execute function private.hint_dispatch_after_insert();

drop trigger if exists extraction_queue_hint_dispatch_after_update on public.extraction_queue;
create trigger extraction_queue_hint_dispatch_after_update
  after update on public.extraction_queue
  referencing old table as updated_jobs_before new table as updated_jobs_after
  for each statement execute function private.hint_dispatch_after_update();

-- The every-minute guarantee behind the hints: calls dispatch whether or not
-- any hint got through, and even when nothing is claimable (dispatch decides
-- what to do; an idle call is cheap). `jobs` says how many jobs are
-- claimable now, including those whose backoff ended since the last hint.
create or replace function private.dispatch_tick()
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  claimable bigint;
begin
  select coalesce(sum(b.waiting), 0) into claimable from queue.queue_backlog() b;
  return private.invoke_edge_function('dispatch', jsonb_build_object(
    'reason', 'tick', 'source', 'pg_cron', 'jobs', claimable));
end
$$;

revoke all on function private.hint_dispatch_after_insert() from public;
revoke all on function private.hint_dispatch_after_update() from public;
revoke all on function private.dispatch_tick() from public;
