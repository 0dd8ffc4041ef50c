-- Why: a runner that dies (crash, OOM, lost network) stops renewing its
-- lease; its job must come back by itself. Only leases that have actually
-- expired are reaped: the earlier system reaped on "started more than N
-- minutes ago" and ran long jobs twice. Scheduled every minute by pg_cron.

-- Returns every running job whose lease has expired to its stage's waiting
-- status (2 → 1, 6 → 3), claimable at once, or to 4 when the stage has spent
-- its attempts (the same rule as a retryable failure: see
-- private.status_after_failure). The stage's error column says what
-- happened. Returns the number of jobs reaped.
create or replace function queue.reap_expired_leases()
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  reaped integer;
begin
  update public.extraction_queue q
  set status_id = private.status_after_failure(q, false),
      available_at = now(),
      error_message = case when q.status_id = 2
        then format('the lease of runner %s expired at %s without completion (attempt %s of %s)',
                    q.worker_id, q.extraction_lease_expires_at, q.attempts, q.max_attempts)
        else q.error_message end,
      last_error_at = case when q.status_id = 2 then now() else q.last_error_at end,
      ocr_error = case when q.status_id = 6
        then format('the lease of OCR runner %s expired at %s without completion (attempt %s of %s)',
                    q.ocr_worker_id, q.ocr_lease_expires_at, q.ocr_attempts, q.ocr_max_attempts)
        else q.ocr_error end,
      ocr_last_error_at = case when q.status_id = 6 then now() else q.ocr_last_error_at end,
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      ocr_lease_token = null,
      ocr_lease_expires_at = null
  where (q.status_id = 2 and q.extraction_lease_expires_at <= now())
     or (q.status_id = 6 and q.ocr_lease_expires_at <= now());
  get diagnostics reaped = row_count;
  return reaped;
end
$$;

revoke all on function queue.reap_expired_leases() from public;
grant execute on function queue.reap_expired_leases() to service_role;
