-- Why: profiling the claim/complete path showed Postgres re-parsing SQL
-- function bodies on every call: a LANGUAGE sql function with a SET clause
-- is never inlined, and outside a cached plan its body is parsed each time.
-- The lease checks touch no table and name only built-in operators, so they
-- need no fixed search_path: without it the planner inlines them into the
-- fenced UPDATEs' WHERE clauses. The hint slot, which does touch a table
-- and keeps its fixed search_path, becomes PL/pgSQL, whose plans are cached
-- per session.

alter function private.holds_extraction_lease(public.extraction_queue, uuid) reset search_path;
alter function private.holds_ocr_lease(public.extraction_queue, uuid) reset search_path;

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
  -- `skip locked`: while another transaction is taking the slot, this one
  -- does not wait for it; that transaction's hint covers both.
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
