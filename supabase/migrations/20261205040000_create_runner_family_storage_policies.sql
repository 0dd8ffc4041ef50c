-- Why: the runners' Storage credential must work on a project that has only
-- the new publishable/secret API keys (the legacy JWT secret that signed
-- the storage_runner JWT is going away), and be least privilege per family
-- (issue 20 item 2, issue 19 item 13). Each runner family now signs in as
-- its own Supabase Auth user (runners/storage/storage-session.ts), whose
-- app_metadata.runner_family (settable only with the secret key) says which
-- family it is; Storage runs its queries as `authenticated` with that
-- user's claims, read here with auth.jwt():
--   registre: INSERT into the three document buckets, nothing else (no
--             read, no overwrite, no delete);
--   ocr:      SELECT in them, nothing else.
-- The legacy storage_runner role and its policies stay until every stage
-- has switched (docs/deploy.md, "Storage credential"), then a later
-- migration drops them.
--
-- Guarded like the storage_runner migration: schema storage and auth.jwt()
-- exist on hosted Supabase and in the local bootstrap.

do $$
begin
  if to_regclass('storage.objects') is null or to_regprocedure('auth.jwt()') is null then
    raise notice 'schema storage or auth.jwt() not found: no runner family Storage policies here';
    return;
  end if;

  drop policy if exists runner_registre_inserts_documents on storage.objects;
  create policy runner_registre_inserts_documents on storage.objects
    for insert to authenticated
    with check (
      bucket_id in ('index', 'actes', 'plans-cadastraux')
      and (auth.jwt() -> 'app_metadata' ->> 'runner_family') = 'registre'
    );

  drop policy if exists runner_ocr_reads_documents on storage.objects;
  create policy runner_ocr_reads_documents on storage.objects
    for select to authenticated
    using (
      bucket_id in ('index', 'actes', 'plans-cadastraux')
      and (auth.jwt() -> 'app_metadata' ->> 'runner_family') = 'ocr'
    );
end
$$;
