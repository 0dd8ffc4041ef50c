-- Why: the earlier system had an error handler that reopened rows already
-- marked Erreur, looping forever. Statuses 4 (Erreur) and 5 (Extraction
-- Complété) are terminal: this trigger refuses any update that moves a row
-- out of them, whoever runs it, unless queue.retry_job is reopening that very
-- row (it sets `extraction_queue.reopening` to the row id for the duration of
-- its update). The setting is a guard against mistakes, not a permission.
--
-- SQLSTATE QL002 (terminal_status): the row is terminal; nothing changed.

create or replace function private.guard_terminal_status()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.status_id in (4, 5)
     and new.status_id is distinct from old.status_id
     and current_setting('extraction_queue.reopening', true) is distinct from old.id::text then
    raise exception 'job % is in terminal status % and cannot move to %; only queue.retry_job reopens a failed job',
      old.id, old.status_id, new.status_id
      using errcode = 'QL002', column = 'status_id', table = 'extraction_queue';
  end if;
  return new;
end
$$;

revoke all on function private.guard_terminal_status() from public;

drop trigger if exists extraction_queue_guard_terminal_status on public.extraction_queue;
create trigger extraction_queue_guard_terminal_status
  before update of status_id on public.extraction_queue
  for each row execute function private.guard_terminal_status();
