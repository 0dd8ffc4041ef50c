-- Why: infrastructure releases are limited "in a row": once a stage
-- completes, the runners demonstrably work, so the count starts again.
-- complete_ocr also refuses empty text: an OCR that read nothing is a
-- failure to report (fail_job), never a finished document with no content.

-- Records the PDF of job `job_id` at `supabase_path` ("bucket/filename") and
-- ends the extraction stage: index and acte go 2 → 3 (waiting for OCR),
-- plan_cadastraux go 2 → 5 (plans are not OCRed). Returns the new status id.
-- Refused with QL001 unless `lease_token` is the current extraction lease.
create or replace function queue.complete_extraction(job_id uuid, lease_token uuid, supabase_path text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
begin
  if complete_extraction.supabase_path is null or complete_extraction.supabase_path !~ '^[^/[:space:]]+/[^/].*$' then
    raise exception 'supabase_path must be "bucket/filename" (e.g. index/123-Montreal-Cadastre_du_Quebec-1700000000.pdf); got %',
      coalesce('"' || complete_extraction.supabase_path || '"', 'null')
      using errcode = 'invalid_parameter_value';
  end if;

  update public.extraction_queue q
  set status_id = case when q.document_source = 'plan_cadastraux' then 5 else 3 end,
      supabase_path = complete_extraction.supabase_path,
      extraction_completed_at = now(),
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      error_message = null,
      infrastructure_releases = 0,
      available_at = now()
  where q.id = complete_extraction.job_id
    and private.holds_extraction_lease(q, complete_extraction.lease_token)
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(complete_extraction.job_id, complete_extraction.lease_token, 'complete_extraction');
  end if;
  return new_status;
end
$$;

-- Stores the raw OCR text `file_content` and the corrected text
-- `boosted_file_content` of job `job_id` and moves it 6 → 5. Returns the new
-- status id (5). Refused with 22023 when either text is missing or blank,
-- and with QL001 unless `lease_token` is the current OCR lease.
create or replace function queue.complete_ocr(job_id uuid, lease_token uuid, file_content text, boosted_file_content text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
begin
  if complete_ocr.file_content is null or btrim(complete_ocr.file_content, E' \t\r\n\f\v') = '' then
    raise exception 'file_content is required and cannot be blank (the raw OCR text; an OCR that read nothing is a failure: report it with fail_job)'
      using errcode = 'invalid_parameter_value';
  end if;
  if complete_ocr.boosted_file_content is null or btrim(complete_ocr.boosted_file_content, E' \t\r\n\f\v') = '' then
    raise exception 'boosted_file_content is required and cannot be blank (the corrected OCR text)'
      using errcode = 'invalid_parameter_value';
  end if;

  update public.extraction_queue q
  set status_id = 5,
      file_content = complete_ocr.file_content,
      boosted_file_content = complete_ocr.boosted_file_content,
      ocr_completed_at = now(),
      ocr_lease_token = null,
      ocr_lease_expires_at = null,
      ocr_error = null,
      infrastructure_releases = 0
  where q.id = complete_ocr.job_id
    and private.holds_ocr_lease(q, complete_ocr.lease_token)
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(complete_ocr.job_id, complete_ocr.lease_token, 'complete_ocr');
  end if;
  return new_status;
end
$$;

revoke all on function queue.complete_extraction(uuid, uuid, text) from public;
revoke all on function queue.complete_ocr(uuid, uuid, text, text) from public;
grant execute on function queue.complete_extraction(uuid, uuid, text) to runner, service_role;
grant execute on function queue.complete_ocr(uuid, uuid, text, text) to runner, service_role;
