-- Why: a runner that finishes a job and is not shutting down claims the next
-- one straight away. Doing both in one call halves the round trips per job
-- through the transaction pooler, and the database work per job with them.
-- Each function is exactly the two existing, fenced operations in one
-- transaction: if the report is refused (QL001), nothing is claimed.

-- (Parameters are named completed_* because the result's columns take the
-- plain names, as claim_jobs returns them.)
-- Reports job `completed_job_id`'s PDF as complete_extraction does, then claims the
-- next registre job as claim_jobs('registre', worker_id, 1, lease_seconds).
-- Always returns one row: the completed job's new status, and the next job's
-- claim columns (all null when nothing is waiting).
create or replace function queue.complete_extraction_and_claim_next(
  completed_job_id uuid, completed_lease_token uuid, completed_supabase_path text, worker_id text, lease_seconds integer
)
returns table (
  completed_status_id integer,
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
  completed integer;
begin
  completed := queue.complete_extraction(
    complete_extraction_and_claim_next.completed_job_id,
    complete_extraction_and_claim_next.completed_lease_token,
    complete_extraction_and_claim_next.completed_supabase_path);
  return query
    select completed, next_job.*
    from (select) as always_one_row
    left join queue.claim_jobs('registre', complete_extraction_and_claim_next.worker_id, 1,
                               complete_extraction_and_claim_next.lease_seconds) as next_job on true;
end
$$;

-- Reports job `completed_job_id`'s texts as complete_ocr does, then claims the next job
-- of OCR kind `kind` ('index-ocr' or 'acte-ocr'). Same one-row result.
create or replace function queue.complete_ocr_and_claim_next(
  completed_job_id uuid, completed_lease_token uuid, file_content text, boosted_file_content text,
  kind text, worker_id text, lease_seconds integer
)
returns table (
  completed_status_id integer,
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
  completed integer;
begin
  if complete_ocr_and_claim_next.kind is null or complete_ocr_and_claim_next.kind not in ('index-ocr', 'acte-ocr') then
    raise exception 'kind must be index-ocr or acte-ocr; got %', coalesce('"' || complete_ocr_and_claim_next.kind || '"', 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  completed := queue.complete_ocr(
    complete_ocr_and_claim_next.completed_job_id,
    complete_ocr_and_claim_next.completed_lease_token,
    complete_ocr_and_claim_next.file_content,
    complete_ocr_and_claim_next.boosted_file_content);
  return query
    select completed, next_job.*
    from (select) as always_one_row
    left join queue.claim_jobs(complete_ocr_and_claim_next.kind, complete_ocr_and_claim_next.worker_id, 1,
                               complete_ocr_and_claim_next.lease_seconds) as next_job on true;
end
$$;

revoke all on function queue.complete_extraction_and_claim_next(uuid, uuid, text, text, integer) from public;
revoke all on function queue.complete_ocr_and_claim_next(uuid, uuid, text, text, text, text, integer) from public;
grant execute on function queue.complete_extraction_and_claim_next(uuid, uuid, text, text, integer) to runner, service_role;
grant execute on function queue.complete_ocr_and_claim_next(uuid, uuid, text, text, text, text, integer) to runner, service_role;
