-- Why: registre runners on the new API keys sign in as the registre family's
-- Auth user (20261205040000), which may only insert into the document
-- buckets; a failed job's trace goes to the private `registre-traces` bucket
-- (20261205010200), and each registre task purges the traces past their 14
-- days (runners/registre/trace-store.ts). So that user may insert traces,
-- list them, and delete only those older than the retention: nothing it
-- kept less than 14 days ago can be removed with its credential.
-- Guarded like 20261205040000.

do $$
begin
  if to_regclass('storage.objects') is null or to_regprocedure('auth.jwt()') is null then
    raise notice 'schema storage or auth.jwt() not found: no registre trace policies here';
    return;
  end if;

  drop policy if exists runner_registre_inserts_traces on storage.objects;
  create policy runner_registre_inserts_traces on storage.objects
    for insert to authenticated
    with check (bucket_id = 'registre-traces' and (auth.jwt() -> 'app_metadata' ->> 'runner_family') = 'registre');

  drop policy if exists runner_registre_lists_traces on storage.objects;
  create policy runner_registre_lists_traces on storage.objects
    for select to authenticated
    using (bucket_id = 'registre-traces' and (auth.jwt() -> 'app_metadata' ->> 'runner_family') = 'registre');

  drop policy if exists runner_registre_purges_old_traces on storage.objects;
  create policy runner_registre_purges_old_traces on storage.objects
    for delete to authenticated
    using (
      bucket_id = 'registre-traces'
      and (auth.jwt() -> 'app_metadata' ->> 'runner_family') = 'registre'
      and created_at < now() - interval '14 days'
    );
end
$$;
