-- Why: status ids are what existing SQL and Supabase Studio filters use, and
-- their French names are what operators read. The lookup table is the one
-- place the names live in the database; supabase/functions/_shared/job-kinds.ts
-- (JOB_STATUS) mirrors it and a test keeps the two in agreement.

create table if not exists public.extraction_status (
  id integer primary key,
  name text not null unique
);

comment on table public.extraction_status is
  'Statuses of extraction_queue rows. Flow: 1 → 2 → 3 → 6 → 5 (plans: 2 → 5), or → 4 when a job fails for good. 4 and 5 are terminal.';

insert into public.extraction_status (id, name) values
  (1, 'En attente'),
  (2, 'En traitement'),
  (3, 'Complété'),
  (4, 'Erreur'),
  (5, 'Extraction Complété'),
  (6, 'OCR en traitement')
on conflict (id) do update set name = excluded.name;

alter table public.extraction_status enable row level security;
revoke all on table public.extraction_status from public, anon, authenticated;
grant select on table public.extraction_status to service_role;
