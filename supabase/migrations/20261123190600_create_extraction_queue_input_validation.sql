-- Why: a row that can never succeed (no cadastre for an index, an unknown
-- acte type, ...) must be refused at insert with a message a person
-- understands and that names the field, instead of failing three times in a
-- runner. The trigger gives the readable message (errcode check_violation,
-- with the column name in the error's `column` field); the check constraints
-- keep the same rules true for later updates too.

-- `document_source` values; mirrored by DOCUMENT_SOURCES in _shared/job-kinds.ts.
-- These lists have no fixed search_path (they name nothing): with a SET
-- clause the check constraints below would parse them on every UPDATE;
-- without one the planner inlines them and folds them to constants.
create or replace function private.document_sources()
returns text[]
language sql
immutable
as $$ select array['index', 'acte', 'plan_cadastraux'] $$;

-- `acte_type` values the registry's acte search offers; mirrored by ACTE_TYPES
-- in _shared/job-kinds.ts.
create or replace function private.acte_types()
returns text[]
language sql
immutable
as $$ select array['Acte', 'Avis d''adresse', 'Radiation', 'Acte divers'] $$;

-- The check constraints below call these lists, and Postgres checks execute
-- permission for the role that writes the row; the lists are not secret.
grant execute on function private.document_sources() to public;
grant execute on function private.acte_types() to public;

-- Refuses a new or edited extraction_queue row whose input can never
-- succeed, naming the field in the message. Security definer because it
-- calls helpers in schema private, which the inserting role cannot use.
create or replace function private.validate_extraction_queue_row()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  sources text[] := private.document_sources();
  acte_types text[] := private.acte_types();
begin
  if new.document_source is null or not (new.document_source = any (sources)) then
    raise exception 'document_source must be one of %; got %',
      array_to_string(sources, ', '), coalesce('"' || new.document_source || '"', 'nothing')
      using errcode = 'check_violation', column = 'document_source', table = 'extraction_queue';
  end if;

  if new.document_number is null
     or regexp_replace(new.document_number, '[[:space:]\u00a0\u2007\u202f\ufeff]+', '', 'g') = '' then
    raise exception 'document_number is required (the lot number for index and plan_cadastraux, the inscription number for acte) and cannot be blank'
      using errcode = 'check_violation', column = 'document_number', table = 'extraction_queue';
  end if;

  if new.circonscription_fonciere is null or btrim(new.circonscription_fonciere) = '' then
    raise exception 'circonscription_fonciere is required (the registry division, e.g. Montréal) and cannot be blank'
      using errcode = 'check_violation', column = 'circonscription_fonciere', table = 'extraction_queue';
  end if;

  if new.document_source in ('index', 'plan_cadastraux')
     and (new.cadastre is null or btrim(new.cadastre) = '') then
    raise exception 'cadastre is required when document_source is "%" (e.g. Cadastre du Québec)', new.document_source
      using errcode = 'check_violation', column = 'cadastre', table = 'extraction_queue';
  end if;

  if new.document_source = 'acte' and (new.acte_type is null or btrim(new.acte_type) = '') then
    raise exception 'acte_type is required when document_source is "acte" (one of: %)', array_to_string(acte_types, ', ')
      using errcode = 'check_violation', column = 'acte_type', table = 'extraction_queue';
  end if;

  if new.document_source = 'acte' and not (new.acte_type = any (acte_types)) then
    raise exception 'acte_type "%" is unknown; use one of: %', new.acte_type, array_to_string(acte_types, ', ')
      using errcode = 'check_violation', column = 'acte_type', table = 'extraction_queue';
  end if;

  if tg_op = 'INSERT' and new.status_id is distinct from 1 then
    raise exception 'status_id must be 1 (En attente) when a job is inserted; got %', coalesce(new.status_id::text, 'null')
      using errcode = 'check_violation', column = 'status_id', table = 'extraction_queue';
  end if;

  return new;
end
$$;

revoke all on function private.validate_extraction_queue_row() from public;

drop trigger if exists extraction_queue_validate_input on public.extraction_queue;
create trigger extraction_queue_validate_input
  before insert or update of document_source, document_number, circonscription_fonciere, cadastre, acte_type
  on public.extraction_queue
  for each row execute function private.validate_extraction_queue_row();

alter table public.extraction_queue
  drop constraint if exists extraction_queue_document_source_check,
  add constraint extraction_queue_document_source_check
    check (document_source = any (private.document_sources())),
  drop constraint if exists extraction_queue_document_number_check,
  add constraint extraction_queue_document_number_check
    check (document_number_normalized <> ''),
  drop constraint if exists extraction_queue_circonscription_fonciere_check,
  add constraint extraction_queue_circonscription_fonciere_check
    check (btrim(circonscription_fonciere) <> ''),
  drop constraint if exists extraction_queue_cadastre_check,
  add constraint extraction_queue_cadastre_check
    check (document_source = 'acte' or coalesce(btrim(cadastre), '') <> ''),
  drop constraint if exists extraction_queue_acte_type_check,
  add constraint extraction_queue_acte_type_check
    check (document_source <> 'acte' or coalesce(acte_type = any (private.acte_types()), false));
