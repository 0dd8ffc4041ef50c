-- What hosted Supabase provides before any migration runs, recreated for the
-- private local cluster so the same migrations apply unchanged. Idempotent:
-- the stack runs it at every start.
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

create schema if not exists extensions;

-- Supabase's default privileges on schema public (from its initial schema):
-- every table, view, sequence and function the migration role creates there
-- is granted in full to anon, authenticated and service_role, reachable over
-- the Data API. The local cluster reproduces them so that a migration that
-- forgets to revoke is caught here, by the security tests, and not first in
-- production.
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- Supabase's `authenticator`: the role PostgREST and Storage log in as and
-- switch from to the role a JWT names; a custom JWT role is granted to it.
do $$
begin
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator nologin noinherit;
  end if;
end
$$;

-- A minimal Supabase Storage schema (the tables the Storage API keeps its
-- buckets and objects in, row level security on), so migrations that grant
-- on it and write its policies apply locally as on hosted Supabase.
create schema if not exists storage;
create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  public boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  metadata jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_accessed_at timestamptz default now(),
  unique (bucket_id, name)
);
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant usage on schema storage to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

-- Supabase Auth's claim reader, as the platform defines it: the Storage API
-- and PostgREST put the caller's verified JWT claims in request.jwt.claims
-- before running its queries, and policies read them with auth.jwt().
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
create or replace function auth.jwt() returns jsonb
  language sql stable
  as $$ select coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;

-- A minimal Supabase Vault with the same interface (vault.create_secret,
-- vault.update_secret, vault.secrets, vault.decrypted_secrets): secrets are
-- stored encrypted (pgcrypto, with a key in a table no client role can
-- read, where hosted Vault keeps its key outside the database), and only
-- the migration role reads them decrypted. Local only: the file never runs
-- on hosted Supabase, which has the real one.
create extension if not exists pgcrypto with schema extensions;
do $$
begin
  create schema if not exists vault;
  revoke all on schema vault from public;
  create table if not exists vault.local_key (
    only_row boolean primary key default true check (only_row),
    key text not null default encode(extensions.gen_random_bytes(32), 'hex')
  );
  insert into vault.local_key default values on conflict do nothing;
  create table if not exists vault.secrets (
    id uuid primary key default gen_random_uuid(),
    name text unique,
    description text not null default '',
    -- base64 of the pgp_sym_encrypt ciphertext; never the plain text.
    secret text not null,
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  revoke all on vault.local_key, vault.secrets from public;
end
$$;

create or replace function vault.create_secret(new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null)
returns uuid
language sql
security definer
set search_path = ''
as $$
  insert into vault.secrets (name, description, secret, key_id)
  values (new_name, coalesce(new_description, ''),
          encode(extensions.pgp_sym_encrypt(new_secret, (select key from vault.local_key)), 'base64'), new_key_id)
  returning id
$$;

create or replace function vault.update_secret(secret_id uuid, new_secret text default null, new_name text default null, new_description text default null, new_key_id uuid default null)
returns void
language sql
security definer
set search_path = ''
as $$
  update vault.secrets s
  set secret = coalesce(encode(extensions.pgp_sym_encrypt(new_secret, (select key from vault.local_key)), 'base64'), s.secret),
      name = coalesce(new_name, s.name),
      description = coalesce(new_description, s.description),
      key_id = coalesce(new_key_id, s.key_id),
      updated_at = now()
  where s.id = secret_id
$$;

create or replace view vault.decrypted_secrets as
select s.id, s.name, s.description, s.secret,
       extensions.pgp_sym_decrypt(decode(s.secret, 'base64'), (select key from vault.local_key)) as decrypted_secret,
       s.key_id, s.nonce, s.created_at, s.updated_at
from vault.secrets s;

revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;
revoke all on vault.decrypted_secrets from public;
