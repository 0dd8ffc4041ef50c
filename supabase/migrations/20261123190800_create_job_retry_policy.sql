-- Why: "retry or give up?" must be decided in one place, not in scattered
-- ifs: fail_job and the reaper both ask status_after_failure, and both use
-- the same backoff. A final failure (bad input, the registry says the
-- document does not exist) gives up at once; a retryable one gives up only
-- when the stage has spent all its attempts (attempts are counted at claim).

-- The status a running row moves to when its runner fails: back to the
-- waiting status of its stage (1 for extraction, 3 for OCR) while attempts
-- remain and the failure is retryable, else 4 (Erreur). Null for a row that
-- is not running.
create or replace function private.status_after_failure(job public.extraction_queue, is_final boolean)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case job.status_id
    when 2 then case when is_final or job.attempts >= job.max_attempts then 4 else 1 end
    when 6 then case when is_final or job.ocr_attempts >= job.ocr_max_attempts then 4 else 3 end
  end
$$;

-- How long a job waits before it may be claimed again after its
-- `attempts_spent`-th failed attempt: 30 s, 60 s, 120 s, ... capped at 30 min.
-- Deterministic (no jitter): claims are spread by skip-locked batches, not by
-- timing, and operators can predict when a row comes back.
create or replace function private.retry_backoff(attempts_spent integer)
returns interval
language sql
immutable
set search_path = ''
as $$
  select least(
    interval '30 seconds' * power(2, greatest(coalesce(attempts_spent, 1), 1) - 1),
    interval '30 minutes'
  )
$$;

revoke all on function private.status_after_failure(public.extraction_queue, boolean) from public;
revoke all on function private.retry_backoff(integer) from public;
