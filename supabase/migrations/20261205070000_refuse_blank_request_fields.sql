-- Why (issue 19, Hostile input: the bad-row matrix): the required fields
-- circonscription_fonciere and cadastre were checked with btrim, which
-- removes spaces only, so a value of tabs, line breaks or no-break spaces
-- (a spreadsheet paste) was stored and later typed into the registry's form;
-- an optional designation_secondaire of whitespace only was stored the same
-- way. document_number already counts every such character as blank. This
-- trigger refuses, naming the field, any of these fields that is present but
-- holds nothing but whitespace (the same characters the document_number
-- check removes, plus the other Unicode spaces). A separate trigger, so the
-- existing validation functions stay as they are; named to fire after
-- extraction_queue_validate_input (triggers fire in name order), so its
-- messages come first for what it already refuses.

create or replace function private.refuse_blank_request_fields()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  blank constant text := '^[[:space:]\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]*$';
begin
  if new.circonscription_fonciere ~ blank then
    raise exception 'circonscription_fonciere is required (the registry division, e.g. Montréal) and cannot be blank'
      using errcode = 'check_violation', column = 'circonscription_fonciere', table = 'extraction_queue';
  end if;
  if new.cadastre ~ blank then
    raise exception 'cadastre is blank (only spaces, tabs or line breaks): give the cadastre (e.g. Cadastre du Québec), or leave it null where none is needed'
      using errcode = 'check_violation', column = 'cadastre', table = 'extraction_queue';
  end if;
  if new.designation_secondaire ~ blank then
    raise exception 'designation_secondaire is blank (only spaces, tabs or line breaks): give the designation, or leave it null when there is none'
      using errcode = 'check_violation', column = 'designation_secondaire', table = 'extraction_queue';
  end if;
  return new;
end
$$;

revoke all on function private.refuse_blank_request_fields() from public;

drop trigger if exists extraction_queue_validate_whitespace_only_fields on public.extraction_queue;
create trigger extraction_queue_validate_whitespace_only_fields
  before insert or update of circonscription_fonciere, cadastre, designation_secondaire
  on public.extraction_queue
  for each row execute function private.refuse_blank_request_fields();
