-- Why: runners upload and download the PDFs in Supabase Storage. The
-- service-role key would let a leaked runner credential read
-- registry_accounts and rewrite extraction_queue by hand. Runners get
-- instead a JWT whose `role` claim is storage_runner (SUPABASE_STORAGE_KEY,
-- see README "Security"): a role with no grant outside schema storage, whose
-- only Storage policies cover the three document buckets.
--
-- Guarded: schema storage exists on hosted Supabase (and in the local
-- bootstrap); elsewhere only the role is created.

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'storage_runner') then
    create role storage_runner nologin noinherit;
  end if;
exception
  -- Roles are cluster-wide: two databases migrated at once may race here.
  when duplicate_object then null;
end
$$;

comment on role storage_runner is
  'Runners'' Storage credential (a JWT with role storage_runner): read and write objects of buckets index, actes and plans-cadastraux, nothing else.';

-- The Storage API (and PostgREST) log in as authenticator and switch to the
-- role the JWT names; they may only switch to roles granted to it.
do $$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    grant storage_runner to authenticator;
  end if;
end
$$;

do $$
begin
  if to_regclass('storage.objects') is null or to_regclass('storage.buckets') is null then
    raise notice 'schema storage not found: storage_runner gets no Storage policies here';
    return;
  end if;

  -- The three buckets the domain names (see runners/storage/document-object-path.ts), private.
  insert into storage.buckets (id, name, public)
  values ('index', 'index', false), ('actes', 'actes', false), ('plans-cadastraux', 'plans-cadastraux', false)
  on conflict (id) do nothing;

  grant usage on schema storage to storage_runner;
  grant select, insert, update, delete on storage.objects to storage_runner;
  grant select on storage.buckets to storage_runner;

  drop policy if exists storage_runner_document_buckets on storage.objects;
  create policy storage_runner_document_buckets on storage.objects
    for all to storage_runner
    using (bucket_id in ('index', 'actes', 'plans-cadastraux'))
    with check (bucket_id in ('index', 'actes', 'plans-cadastraux'));

  drop policy if exists storage_runner_document_buckets on storage.buckets;
  create policy storage_runner_document_buckets on storage.buckets
    for select to storage_runner
    using (id in ('index', 'actes', 'plans-cadastraux'));
end
$$;
