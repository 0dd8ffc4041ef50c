-- Why: an OCR runner writes the extracted text through this one fenced
-- function; the row becomes final (5) in the same statement.

-- Stores the raw OCR text `file_content` and the corrected text
-- `boosted_file_content` of job `job_id` and moves it 6 → 5. Returns the new
-- status id (5). Refused with QL001 unless `lease_token` is the current OCR
-- lease.
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
  if complete_ocr.file_content is null then
    raise exception 'file_content is required (the raw OCR text)'
      using errcode = 'invalid_parameter_value';
  end if;
  if complete_ocr.boosted_file_content is null then
    raise exception 'boosted_file_content is required (the corrected OCR text)'
      using errcode = 'invalid_parameter_value';
  end if;

  update public.extraction_queue q
  set status_id = 5,
      file_content = complete_ocr.file_content,
      boosted_file_content = complete_ocr.boosted_file_content,
      ocr_completed_at = now(),
      ocr_lease_token = null,
      ocr_lease_expires_at = null,
      ocr_error = null
  where q.id = complete_ocr.job_id
    and private.holds_ocr_lease(q, complete_ocr.lease_token)
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(complete_ocr.job_id, complete_ocr.lease_token, 'complete_ocr');
  end if;
  return new_status;
end
$$;

revoke all on function queue.complete_ocr(uuid, uuid, text, text) from public;
grant execute on function queue.complete_ocr(uuid, uuid, text, text) to runner, service_role;
