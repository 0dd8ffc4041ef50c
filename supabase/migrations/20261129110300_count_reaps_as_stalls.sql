-- Why: a reap means the runner died holding the job (crash, OOM, a lost
-- task), which says nothing about the document, so it no longer spends an
-- attempt. It counts as a stall instead, with its own limit (BullMQ's
-- maxStalledCount): a document that kills every runner that touches it
-- still ends in 4 rather than cycling forever. The runner's worker id is
-- cleared with its lease, so the row never names a runner that is gone.

-- Returns every running job whose lease has expired to its stage's waiting
-- status (2 → 1, 6 → 3), claimable at once, giving back the attempt its
-- claim counted and counting one more stall of that stage; a stage that
-- stalls more than max_stalls times ends in 4 (see
-- private.status_after_interruption). The stage's error column says what
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
  -- In SET, q.* are the values before the update.
  update public.extraction_queue q
  set status_id = private.status_after_interruption(
        q, case when q.status_id = 2 then q.stalls else q.ocr_stalls end + 1 > q.max_stalls),
      attempts = case when q.status_id = 2 then greatest(q.attempts - 1, 0) else q.attempts end,
      ocr_attempts = case when q.status_id = 6 then greatest(q.ocr_attempts - 1, 0) else q.ocr_attempts end,
      stalls = case when q.status_id = 2 then q.stalls + 1 else q.stalls end,
      ocr_stalls = case when q.status_id = 6 then q.ocr_stalls + 1 else q.ocr_stalls end,
      available_at = now(),
      error_message = case when q.status_id = 2
        then format('the lease of runner %s expired at %s without completion (stall %s; %s allowed; no attempt spent)',
                    q.worker_id, q.extraction_lease_expires_at, q.stalls + 1, q.max_stalls)
        else q.error_message end,
      last_error_at = case when q.status_id = 2 then now() else q.last_error_at end,
      ocr_error = case when q.status_id = 6
        then format('the lease of OCR runner %s expired at %s without completion (stall %s; %s allowed; no attempt spent)',
                    q.ocr_worker_id, q.ocr_lease_expires_at, q.ocr_stalls + 1, q.max_stalls)
        else q.ocr_error end,
      ocr_last_error_at = case when q.status_id = 6 then now() else q.ocr_last_error_at end,
      worker_id = case when q.status_id = 2 then null else q.worker_id end,
      ocr_worker_id = case when q.status_id = 6 then null else q.ocr_worker_id end,
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
