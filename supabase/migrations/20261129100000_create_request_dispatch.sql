-- Why: a runner that exits hands its capacity lease back to the ledger, and
-- that room should go to waiting work at once, not at the next cron minute
-- (an idle runner handing back 3 vCPU for a waiting OCR kind is pointless if
-- the OCR task then waits up to 60 s for the tick). The runner role may call
-- only job functions, so it gets this one: it sends the same dispatch hint
-- the triggers send, and only when something is claimable. Like every hint
-- it may be lost; the tick stays the guarantee. It is not throttled with the
-- update-driven hints: a hint suppressed there may have gone out before the
-- lease was released, and runners exit a few times a minute, not thousands.
create or replace function queue.request_dispatch()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  claimable bigint;
begin
  select coalesce(sum(b.waiting), 0) into claimable from queue.queue_backlog() b;
  if claimable = 0 then
    return false;
  end if;
  perform private.invoke_edge_function('dispatch', jsonb_build_object(
    'reason', 'capacity-returned', 'source', 'runner', 'jobs', claimable));
  return true;
end
$$;

comment on function queue.request_dispatch() is
  'Called by a runner after it released its capacity lease: hints dispatch when jobs are claimable. Returns whether a hint was sent.';

revoke all on function queue.request_dispatch() from public;
grant execute on function queue.request_dispatch() to runner;
