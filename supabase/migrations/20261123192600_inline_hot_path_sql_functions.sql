-- Why: profiling the claim/complete path showed Postgres parsing SQL
-- function bodies on every call: a LANGUAGE sql function with a SET clause
-- is never inlined, so each call parses and plans its body again. The lease
-- checks (in every fenced UPDATE's WHERE) and the two value lists (in the
-- check constraints, evaluated on every UPDATE of a row) touch no table and
-- name only built-in operators, so they need no fixed search_path: without
-- it the planner inlines them, and folds the lists to constants. The hint
-- slot, which does touch a table and keeps its fixed search_path, becomes
-- PL/pgSQL, whose plans are cached per session.

alter function private.holds_extraction_lease(public.extraction_queue, uuid) reset search_path;
alter function private.holds_ocr_lease(public.extraction_queue, uuid) reset search_path;
alter function private.document_sources() reset search_path;
alter function private.acte_types() reset search_path;

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
