-- Why: an index or acte row past extraction (3 waiting for OCR, 6 in OCR,
-- 5 done) exists only because its PDF is in Storage; without the path an OCR
-- runner would claim a job it can never do and spend its attempts on it.
-- The constraint makes such a row impossible, and the OCR claim asks for the
-- path as well, so it never hands out a job without its input.

alter table public.extraction_queue
  drop constraint if exists extraction_queue_ocr_input_check,
  add constraint extraction_queue_ocr_input_check
    check (document_source not in ('index', 'acte')
           or status_id not in (3, 5, 6)
           or coalesce(btrim(supabase_path), '') <> '');

comment on constraint extraction_queue_ocr_input_check on public.extraction_queue is
  'Index and acte rows in 3, 6 or 5 carry the supabase_path of their PDF.';

-- Claims up to `batch_size` waiting jobs of `kind` for runner `worker_id`
-- and leases them for `lease_seconds`:
--   registre   status 1 → 2 (any document_source), counts `attempts`;
--   index-ocr  status 3 → 6 (document_source 'index'), counts `ocr_attempts`;
--   acte-ocr   status 3 → 6 (document_source 'acte'), counts `ocr_attempts`.
-- Highest priority first, then oldest; rows whose `available_at` (retry
-- backoff, infrastructure backoff) is in the future are skipped, and an OCR
-- job is claimed only with the PDF it must read (`supabase_path`). Returns
-- one row per claimed job with
-- its lease token, lease expiry and the stage's attempt number; an empty
-- result means nothing is waiting.
create or replace function queue.claim_jobs(kind text, worker_id text, batch_size integer, lease_seconds integer)
returns table (
  id uuid,
  lease_token uuid,
  lease_expires_at timestamptz,
  document_source text,
  document_number text,
  document_number_normalized text,
  circonscription_fonciere text,
  cadastre text,
  designation_secondaire text,
  acte_type text,
  supabase_path text,
  attempt integer
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  expires_at timestamptz;
  ocr_source text;
begin
  if claim_jobs.kind is null or claim_jobs.kind not in ('registre', 'index-ocr', 'acte-ocr') then
    raise exception 'kind must be one of registre, index-ocr, acte-ocr; got %', coalesce('"' || claim_jobs.kind || '"', 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  perform private.require_text(claim_jobs.worker_id, 'worker_id');
  perform private.require_between(claim_jobs.batch_size, 1, 1000, 'batch_size');
  perform private.require_between(claim_jobs.lease_seconds, 1, 86400, 'lease_seconds');

  expires_at := now() + make_interval(secs => claim_jobs.lease_seconds);

  -- Locking: `for update skip locked` lets any number of runners claim at
  -- once without waiting on each other: each locks a disjoint set of rows,
  -- and a row another claimer has locked is simply not offered. Under read
  -- committed, a row that another claimer already moved to 2/6 fails the
  -- re-checked `status_id` condition and is dropped, so no row is claimed
  -- twice. The update then runs only on rows this transaction has locked.
  if claim_jobs.kind = 'registre' then
    return query
      with picked as (
        select q.id
        from public.extraction_queue q
        where q.status_id = 1
          and q.available_at <= now()
        order by q.priority desc, q.created_at, q.id
        limit claim_jobs.batch_size
        for update skip locked
      )
      update public.extraction_queue q
      set status_id = 2,
          worker_id = claim_jobs.worker_id,
          processing_started_at = now(),
          attempts = q.attempts + 1,
          extraction_lease_token = gen_random_uuid(),
          extraction_lease_expires_at = expires_at
      from picked
      where q.id = picked.id
      returning q.id, q.extraction_lease_token, q.extraction_lease_expires_at,
                q.document_source, q.document_number, q.document_number_normalized,
                q.circonscription_fonciere, q.cadastre, q.designation_secondaire,
                q.acte_type, q.supabase_path, q.attempts;
    return;
  end if;

  ocr_source := case claim_jobs.kind when 'index-ocr' then 'index' else 'acte' end;
  return query
    with picked as (
      select q.id
      from public.extraction_queue q
      where q.status_id = 3
        and q.document_source = ocr_source
        and q.supabase_path is not null
        and q.available_at <= now()
      order by q.priority desc, q.created_at, q.id
      limit claim_jobs.batch_size
      for update skip locked
    )
    update public.extraction_queue q
    set status_id = 6,
        ocr_worker_id = claim_jobs.worker_id,
        ocr_started_at = now(),
        ocr_completed_at = null,
        ocr_attempts = q.ocr_attempts + 1,
        ocr_lease_token = gen_random_uuid(),
        ocr_lease_expires_at = expires_at
    from picked
    where q.id = picked.id
    returning q.id, q.ocr_lease_token, q.ocr_lease_expires_at,
              q.document_source, q.document_number, q.document_number_normalized,
              q.circonscription_fonciere, q.cadastre, q.designation_secondaire,
              q.acte_type, q.supabase_path, q.ocr_attempts;
end
$$;

revoke all on function queue.claim_jobs(text, text, integer, integer) from public;
grant execute on function queue.claim_jobs(text, text, integer, integer) to runner, service_role;
