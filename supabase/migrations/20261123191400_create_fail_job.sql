-- Why: a runner classifies every failure as final or retryable; this is the
-- one place that turns that verdict into a status, so retries are bounded
-- and a failed row can never be reopened by an error handler.

-- Records `error` for job `job_id` (in `error_message` for the extraction
-- stage, `ocr_error` for the OCR stage) and ends the runner's lease. A final
-- failure (`is_final`) moves the row to 4 at once; a retryable one sends it
-- back to its stage's waiting status (1 or 3), not claimable before the
-- backoff has passed, or to 4 once the stage's attempts are spent (see
-- private.status_after_failure). Returns the new status id. Refused with
-- QL001 unless `lease_token` is the current lease of either stage.
create or replace function queue.fail_job(job_id uuid, lease_token uuid, error text, is_final boolean)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
  -- Keeps a runaway stack trace from bloating the row; the start says why.
  stored_error text := left(fail_job.error, 10000);
begin
  perform private.require_text(fail_job.error, 'error');
  if fail_job.is_final is null then
    raise exception 'is_final is required: true for a failure that can never succeed, false for a retryable one'
      using errcode = 'invalid_parameter_value';
  end if;

  update public.extraction_queue q
  set status_id = private.status_after_failure(q, fail_job.is_final),
      available_at = now() + private.retry_backoff(case when q.status_id = 2 then q.attempts else q.ocr_attempts end),
      error_message = case when q.status_id = 2 then stored_error else q.error_message end,
      last_error_at = case when q.status_id = 2 then now() else q.last_error_at end,
      ocr_error = case when q.status_id = 6 then stored_error else q.ocr_error end,
      ocr_last_error_at = case when q.status_id = 6 then now() else q.ocr_last_error_at end,
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      ocr_lease_token = null,
      ocr_lease_expires_at = null
  where q.id = fail_job.job_id
    and (private.holds_extraction_lease(q, fail_job.lease_token)
         or private.holds_ocr_lease(q, fail_job.lease_token))
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(fail_job.job_id, fail_job.lease_token, 'fail_job');
  end if;
  return new_status;
end
$$;

revoke all on function queue.fail_job(uuid, uuid, text, boolean) from public;
grant execute on function queue.fail_job(uuid, uuid, text, boolean) to runner, service_role;
