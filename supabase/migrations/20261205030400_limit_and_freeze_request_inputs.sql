-- Why (issue 19 item 13): the request's input fields had no length limit (a
-- 100 KB document_number held a runner's event loop for 4.5 s in the lot
-- formatter) and could be edited while the row was being worked on or done
-- (status 2, 6, 5): the PDF and the text of the old document then stayed on
-- the row under the new number. This trigger refuses, naming the field:
-- - a field longer than its limit (document_number 64 characters: lot and
--   inscription numbers are about ten; names and designations 200);
-- - a control character other than whitespace in a field (no registry
--   form takes one; they hide what a person reads in Studio);
-- - a change of an input field while the row is in 2 (En traitement),
--   6 (OCR en traitement) or 5 (Extraction Complété): insert a new request
--   instead, or wait for the row to be back in 1 or end in 4.
-- A separate trigger from extraction_queue_validate_input, so that
-- function's body stays as it is.

create or replace function private.guard_extraction_queue_inputs()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  field record;
begin
  for field in
    select f.name, f.value, f.max_length
    from (values
      ('document_number', new.document_number, 64),
      ('circonscription_fonciere', new.circonscription_fonciere, 200),
      ('cadastre', new.cadastre, 200),
      ('designation_secondaire', new.designation_secondaire, 200),
      ('acte_type', new.acte_type, 200)
    ) as f(name, value, max_length)
  loop
    if length(field.value) > field.max_length then
      raise exception '% is % characters long; at most % are allowed', field.name, length(field.value), field.max_length
        using errcode = 'check_violation', column = field.name, table = 'extraction_queue';
    end if;
    -- Tabs and line breaks (\x09-\x0d) are whitespace that a paste from a
    -- spreadsheet brings and the normalization removes; the others are not.
    if field.value ~ '[\x01-\x08\x0e-\x1f\x7f]' then
      raise exception '% contains a control character (an invisible character other than a space, tab or line break); remove it', field.name
        using errcode = 'check_violation', column = field.name, table = 'extraction_queue';
    end if;
  end loop;

  if tg_op = 'UPDATE' and old.status_id in (2, 5, 6) then
    for field in
      select f.name
      from (values
        ('document_source', old.document_source is distinct from new.document_source),
        ('document_number', old.document_number is distinct from new.document_number),
        ('circonscription_fonciere', old.circonscription_fonciere is distinct from new.circonscription_fonciere),
        ('cadastre', old.cadastre is distinct from new.cadastre),
        ('designation_secondaire', old.designation_secondaire is distinct from new.designation_secondaire),
        ('acte_type', old.acte_type is distinct from new.acte_type)
      ) as f(name, changed)
      where f.changed
    loop
      raise exception '% cannot change while the job is in status % (%): its document is being fetched, read or is done; insert a new request instead',
        field.name, old.status_id,
        case old.status_id when 2 then 'En traitement' when 6 then 'OCR en traitement' else 'Extraction Complété' end
        using errcode = 'check_violation', column = field.name, table = 'extraction_queue';
    end loop;
  end if;
  return new;
end
$$;

revoke all on function private.guard_extraction_queue_inputs() from public;

drop trigger if exists extraction_queue_guard_inputs on public.extraction_queue;
create trigger extraction_queue_guard_inputs
  before insert or update of document_source, document_number, circonscription_fonciere, cadastre, designation_secondaire, acte_type
  on public.extraction_queue
  for each row execute function private.guard_extraction_queue_inputs();
