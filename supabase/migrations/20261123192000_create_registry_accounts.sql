-- Why: registre runners log in to the land registry with accounts from this
-- table. An account is used by one runner at a time (the registry does not
-- like shared sessions), the least recently used healthy account goes first,
-- and failures are counted so a locked or wrong account stops being handed
-- out. No client role may read the table: runners get an account (with its
-- password) only through queue.lease_registry_account.

create table if not exists public.registry_accounts (
  id uuid primary key default gen_random_uuid(),
  username text not null,
  -- Stored as given. On hosted Supabase, keep this column encrypted with
  -- Vault (or store a vault.secrets id instead); no client role can read it
  -- here, and the health view never shows it.
  password text not null,
  is_active boolean not null default true,
  last_used_at timestamptz,
  -- Consecutive failed logins or sessions; reset by a successful report.
  failure_count integer not null default 0,
  last_failure_at timestamptz,
  last_error text,
  leased_by text,
  lease_token uuid,
  lease_expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint registry_accounts_username_key unique (username),
  constraint registry_accounts_username_check check (btrim(username) <> ''),
  constraint registry_accounts_password_check check (password <> ''),
  constraint registry_accounts_failure_count_check check (failure_count >= 0),
  constraint registry_accounts_lease_check check (
    (lease_token is null) = (lease_expires_at is null)
    and (lease_token is null) = (leased_by is null)
  )
);

comment on table public.registry_accounts is
  'Land registry logins for registre runners. Leased to one runner at a time through queue.lease_registry_account; read health through the registry_account_health view (no passwords).';
comment on column public.registry_accounts.password is
  'Registry password. On hosted Supabase keep it Vault-encrypted; never exposed to anon, authenticated or runner except through queue.lease_registry_account.';

create index if not exists registry_accounts_lease_order_idx
  on public.registry_accounts (last_used_at nulls first, id)
  where is_active;

drop trigger if exists registry_accounts_touch_updated_at on public.registry_accounts;
create trigger registry_accounts_touch_updated_at
  before update on public.registry_accounts
  for each row execute function private.touch_updated_at();

alter table public.registry_accounts enable row level security;
revoke all on table public.registry_accounts from public, anon, authenticated;
grant select, insert, update, delete on table public.registry_accounts to service_role;
