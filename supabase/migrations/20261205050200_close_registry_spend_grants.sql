-- Why: the registry spend view and the purchases' id sequence were created
-- in public, where Supabase's default privileges grant everything to anon
-- and authenticated (the local bootstrap reproduces them): anyone with the
-- publishable key could read what each account spends, and the API roles
-- could draw ids. Only service_role (Studio, operators) reads spend.

revoke all on table public.registry_spend_per_day from public, anon, authenticated;
grant select on table public.registry_spend_per_day to service_role;
revoke all on sequence public.registry_purchases_id_seq from public, anon, authenticated;

comment on view public.registry_spend_per_day is
  'Registry spend per day (Quebec time), environment and account: documents bought and dollars, from registry_purchases; compare with registre_spend_policy.daily_cap_cents.';
