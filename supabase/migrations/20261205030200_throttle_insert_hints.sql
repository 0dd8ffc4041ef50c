-- Why: insert hints were sent at once, one per statement: 10,000 single-row
-- inserts (a back office importing a batch row by row) became 10,000 pg_net
-- calls, and as many dispatches each polling the dispatch lock: an Upstash
-- command storm. Inserts now share the update hints' throttle (one hint per
-- private.dispatch_hint_throttle.min_interval, 1 s by default). A suppressed
-- hint loses nothing: the dispatch that the last hint started runs again
-- once done when more hints came meanwhile (DispatchLock.runCoalesced), a
-- runner already running claims the rows, and the pg_cron tick is the
-- guarantee (at worst a row inserted alone within a second of another
-- hint waits for it).

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
  if available_jobs > 0 and private.take_dispatch_hint_slot() then
    perform private.invoke_edge_function('dispatch', jsonb_build_object(
      'reason', 'insert', 'source', 'extraction_queue', 'jobs', available_jobs));
  end if;
  return null;
end
$$;

revoke all on function private.hint_dispatch_after_insert() from public;
