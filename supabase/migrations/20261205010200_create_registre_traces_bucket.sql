-- Why: when a registre job fails, the runner keeps a Playwright trace of it
-- (every frame's DOM and the network, credentials scrubbed) for whoever
-- investigates; the row's error names it. Traces go to their own private
-- bucket, which the runners' Storage role may write, list and purge (14
-- days, runners/registre/trace-store.ts); the document buckets' policy is
-- unchanged. Guarded like 20261129120000: schema storage exists on hosted
-- Supabase and in the local bootstrap only.
do $$
begin
  if to_regclass('storage.objects') is null or to_regclass('storage.buckets') is null then
    raise notice 'schema storage not found: no registre-traces bucket here';
    return;
  end if;
  insert into storage.buckets (id, name, public) values ('registre-traces', 'registre-traces', false) on conflict (id) do nothing;
  drop policy if exists storage_runner_registre_traces on storage.objects;
  create policy storage_runner_registre_traces on storage.objects
    for all to storage_runner
    using (bucket_id = 'registre-traces')
    with check (bucket_id = 'registre-traces');
  drop policy if exists storage_runner_registre_traces on storage.buckets;
  create policy storage_runner_registre_traces on storage.buckets
    for select to storage_runner
    using (id = 'registre-traces');
end
$$;
