-- Why: hints are throttled (one per min_interval for updates,
-- min_insert_interval for inserts) so a storm of statements is not a storm
-- of HTTP calls, but a suppressed hint used to be simply dropped: a row
-- inserted a moment after another hint was heard only if that hint's
-- dispatch happened to read the backlog after the row committed, else it
-- waited for the pg_cron tick (a minute locally). Now a hint is suppressed
-- only while an earlier hint is in flight (sent, its dispatch has not read
-- the backlog yet), and the suppressed transaction holds a shared advisory
-- lock until it commits; queue_backlog takes the same lock exclusively
-- before it reads, so the dispatch of the hint in flight waits for those
-- transactions and sees their rows. Nothing a person inserts waits for the
-- tick unless the hint in flight itself was lost (pg_net drops requests:
-- then the tick is the guarantee, as before).

alter table private.dispatch_hint_throttle
  add column if not exists backlog_read_at timestamptz not null default '-infinity';

comment on column private.dispatch_hint_throttle.backlog_read_at is
  'When a dispatch last read the backlog (queue.queue_backlog): a hint sent after it is still in flight, and later hints may fold into it.';

-- The advisory lock key both sides use: hashtext is stable across sessions and versions of one cluster.
create or replace function private.dispatch_hint_lock_key()
returns bigint
language sql
immutable
set search_path = ''
as $$
  select hashtext('extraction_queue dispatch hint')::bigint
$$;

-- True when this transaction should send a hint now, and records it; false
-- when an earlier hint is in flight and less than `gap` old, in which case
-- this transaction keeps a shared lock until it ends so that hint's
-- dispatch reads the backlog after it commits.
create or replace function private.take_dispatch_hint_slot_with_gap(gap interval)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  taken boolean;
begin
  -- First the lock, then the look: a dispatch that reads the backlog after
  -- this point waits for this transaction's commit.
  perform pg_advisory_xact_lock_shared(private.dispatch_hint_lock_key());
  with due as (
    select t.singleton
    from private.dispatch_hint_throttle t
    where t.last_sent_at <= clock_timestamp() - gap
       or t.backlog_read_at >= t.last_sent_at
    -- Another transaction taking the slot right now sends a hint that
    -- covers this one (its dispatch waits for this one's shared lock).
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

create or replace function private.take_dispatch_hint_slot()
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  select private.take_dispatch_hint_slot_with_gap(t.min_interval) from private.dispatch_hint_throttle t
$$;

create or replace function private.take_dispatch_hint_slot_for_insert()
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  select private.take_dispatch_hint_slot_with_gap(t.min_insert_interval) from private.dispatch_hint_throttle t
$$;

-- Per job kind (always three rows: registre, index-ocr, acte-ocr):
--   waiting  jobs claimable now (waiting status, `available_at` passed);
--   delayed  jobs in the waiting status still backing off after a failure;
--   running  jobs leased to a runner whose lease has not expired.
-- Before reading, waits (at most 2 s) for the transactions whose hint was
-- folded into one in flight, and records the read.
create or replace function queue.queue_backlog()
returns table (kind text, waiting bigint, delayed bigint, running bigint)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  begin
    -- Bounded: a long transaction that inserted a row must not hold dispatch
    -- up; its row is then seen by the next hint or the tick.
    perform set_config('lock_timeout', '2s', true);
    perform pg_advisory_xact_lock(private.dispatch_hint_lock_key());
  exception when lock_not_available then
    null;
  end;
  perform set_config('lock_timeout', '0', true);
  update private.dispatch_hint_throttle set backlog_read_at = clock_timestamp();

  -- A statement of its own (volatile function, read committed): a snapshot
  -- taken after the lock, so it holds what those transactions committed.
  return query
  with waiting_jobs as (
    select 'registre' as kind, q.available_at <= now() as available
    from public.extraction_queue q
    where q.status_id = 1
    union all
    select case q.document_source when 'index' then 'index-ocr' when 'acte' then 'acte-ocr' end,
           q.available_at <= now()
    from public.extraction_queue q
    where q.status_id = 3
  ),
  running_jobs as (
    select 'registre' as kind
    from public.extraction_queue q
    where q.status_id = 2 and q.extraction_lease_expires_at > now()
    union all
    select case q.document_source when 'index' then 'index-ocr' when 'acte' then 'acte-ocr' end
    from public.extraction_queue q
    where q.status_id = 6 and q.ocr_lease_expires_at > now()
  )
  select k.kind,
         (select count(*) from waiting_jobs w where w.kind = k.kind and w.available),
         (select count(*) from waiting_jobs w where w.kind = k.kind and not w.available),
         (select count(*) from running_jobs r where r.kind = k.kind)
  from unnest(array['registre', 'index-ocr', 'acte-ocr']) with ordinality as k (kind, position)
  order by k.position;
end
$$;

revoke all on function private.dispatch_hint_lock_key() from public;
revoke all on function private.take_dispatch_hint_slot_with_gap(interval) from public;
revoke all on function private.take_dispatch_hint_slot() from public;
revoke all on function private.take_dispatch_hint_slot_for_insert() from public;
revoke all on function queue.queue_backlog() from public;
grant execute on function queue.queue_backlog() to service_role;
