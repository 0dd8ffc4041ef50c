-- Why: registry passwords were stored as given, readable by anyone who can
-- read the table or a backup of it. They now live encrypted in Supabase
-- Vault; the table keeps only the secret's id, and the one function that
-- decrypts them is queue.lease_registry_account (for the runner that leases
-- the account). Writing a password stays as before (insert or update the
-- `password` column): a trigger moves it into Vault and clears the column
-- before the row is stored, so plain text never reaches the table.
-- Locally, infra/local/supabase-bootstrap.sql provides a Vault with the same
-- interface.

alter table public.registry_accounts add column if not exists password_secret_id uuid;
alter table public.registry_accounts drop constraint if exists registry_accounts_password_check;
alter table public.registry_accounts alter column password drop not null;

comment on column public.registry_accounts.password is
  'Write-only: a password written here is moved into Vault by a trigger and the column cleared; it always reads null.';
comment on column public.registry_accounts.password_secret_id is
  'The Vault secret (vault.secrets.id) holding the registry password, encrypted; decrypted only by queue.lease_registry_account.';

-- Moves NEW.password into Vault (a new secret, or the account's existing
-- one) and clears it. Security definer: Vault's functions belong to the
-- migration role, and the callers (service_role) need not reach them.
create or replace function private.store_registry_password()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.password is null then
    return new;
  end if;
  if new.password = '' then
    raise exception 'a registry password must not be empty'
      using errcode = 'check_violation';
  end if;
  if new.password_secret_id is null then
    new.password_secret_id := vault.create_secret(new.password, 'registry_account:' || new.id::text, 'Registry password of account ' || new.username);
  else
    perform vault.update_secret(new.password_secret_id, new.password);
  end if;
  new.password := null;
  return new;
end
$$;

-- Deletes the Vault secret of a deleted account.
create or replace function private.forget_registry_password()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.password_secret_id is not null then
    delete from vault.secrets s where s.id = old.password_secret_id;
  end if;
  return old;
end
$$;

revoke all on function private.store_registry_password() from public;
revoke all on function private.forget_registry_password() from public;

drop trigger if exists registry_accounts_store_password on public.registry_accounts;
create trigger registry_accounts_store_password
  before insert or update of password on public.registry_accounts
  for each row execute function private.store_registry_password();

drop trigger if exists registry_accounts_forget_password on public.registry_accounts;
create trigger registry_accounts_forget_password
  after delete on public.registry_accounts
  for each row execute function private.forget_registry_password();

-- Accounts stored before this migration: the trigger encrypts them now.
update public.registry_accounts set password = password where password is not null;

alter table public.registry_accounts drop constraint if exists registry_accounts_password_encrypted;
alter table public.registry_accounts add constraint registry_accounts_password_encrypted
  check (password is null and password_secret_id is not null);

-- Same signature and result as before (runners call it unchanged); the
-- password now comes decrypted from Vault, for the leasing runner only.
create or replace function queue.lease_registry_account(worker_id text, lease_seconds integer)
returns table (account_id uuid, username text, password text, lease_token uuid, lease_expires_at timestamptz)
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.require_text(lease_registry_account.worker_id, 'worker_id');
  perform private.require_between(lease_registry_account.lease_seconds, 1, 86400, 'lease_seconds');

  -- Locking: skip locked, as in claim_jobs: two runners asking at once get
  -- different accounts, or one of them gets none.
  return query
    with picked as (
      select a.id
      from public.registry_accounts a
      where a.is_active
        and (a.lease_expires_at is null or a.lease_expires_at <= now())
        and private.registry_account_is_healthy(a)
      order by a.last_used_at nulls first, a.id
      limit 1
      for update skip locked
    )
    update public.registry_accounts a
    set leased_by = lease_registry_account.worker_id,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => lease_registry_account.lease_seconds),
        last_used_at = now()
    from picked
    where a.id = picked.id
    returning a.id,
              a.username,
              (select s.decrypted_secret from vault.decrypted_secrets s where s.id = a.password_secret_id),
              a.lease_token,
              a.lease_expires_at;
end
$$;

revoke all on function queue.lease_registry_account(text, integer) from public;
grant execute on function queue.lease_registry_account(text, integer) to runner, service_role;

-- Same signature as before. A runner reporting a failed login may quote the
-- registry's answer, which can echo the password back: the account's own
-- password is replaced by [redacted] before the text is stored, whatever
-- the runner did.
create or replace function queue.report_registry_account(account_id uuid, lease_token uuid, succeeded boolean, error text default null)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  stored_error text;
begin
  if report_registry_account.succeeded is null then
    raise exception 'succeeded is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if not report_registry_account.succeeded then
    perform private.require_text(report_registry_account.error, 'error');
    select case when s.decrypted_secret is null or s.decrypted_secret = '' then report_registry_account.error
                else replace(report_registry_account.error, s.decrypted_secret, '[redacted]') end
      into stored_error
      from public.registry_accounts a
      left join vault.decrypted_secrets s on s.id = a.password_secret_id
      where a.id = report_registry_account.account_id;
  end if;
  update public.registry_accounts a
  set failure_count = case when report_registry_account.succeeded then 0 else a.failure_count + 1 end,
      last_failure_at = case when report_registry_account.succeeded then a.last_failure_at else now() end,
      last_error = case when report_registry_account.succeeded then a.last_error else left(coalesce(stored_error, report_registry_account.error), 2000) end
  where a.id = report_registry_account.account_id
    and a.lease_token = report_registry_account.lease_token
    and a.lease_expires_at > now();
  if not found then
    perform private.raise_account_lease_not_held(report_registry_account.account_id, 'report_registry_account');
  end if;
end
$$;

revoke all on function queue.report_registry_account(uuid, uuid, boolean, text) from public;
grant execute on function queue.report_registry_account(uuid, uuid, boolean, text) to runner, service_role;
