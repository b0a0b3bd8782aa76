-- The send rate's fallback while Upstash cannot be reached (whatsapp-send-batch,
-- _shared/send_batch/database_rate_limiter.ts): one row per limit key holds the next free call
-- slot of a timeline every instance shares. A take hands out the next p_want slots, p_interval_ms
-- apart, and moves the row past them in the same call: slots never overlap, whichever instance
-- takes them, and each take is one round trip. Works through a transaction-mode pooler: one
-- statement, no session state, the lock is the row's and ends with the statement's transaction.

create table if not exists public.whatsapp_send_rate_slots (
  key text primary key
    constraint whatsapp_send_rate_slots_key_check check (length(key) between 1 and 200),
  -- The first slot not handed out yet.
  next_slot_at timestamptz not null,
  updated_at timestamptz not null default now()
);

-- Written by the function's own connection only; nothing for the Data API roles.
alter table public.whatsapp_send_rate_slots enable row level security;
revoke all on public.whatsapp_send_rate_slots from public, anon, authenticated;
grant select, insert, update, delete on public.whatsapp_send_rate_slots to service_role;

-- Hands out up to p_want slots starting at the later of the next free slot and now, unless the
-- timeline is already booked more than p_horizon_ms ahead (then none, and when to ask again).
-- Times are read after the row lock, so a take that waited for another one does not start from
-- a stale now; first_in_ms is counted from that reading.
create or replace function public.whatsapp_send_rate_take(
  p_key text,
  p_interval_ms double precision,
  p_want integer,
  p_horizon_ms double precision
)
returns table (granted integer, first_in_ms double precision, retry_in_ms double precision)
language plpgsql
set search_path = ''
set lock_timeout = '2s'
as $$
declare
  v_next timestamptz;
  v_now timestamptz;
  v_start timestamptz;
  v_lead_ms double precision;
begin
  if p_interval_ms is null or p_interval_ms <= 0 or p_want is null or p_want not between 1 and 10000
     or p_horizon_ms is null or p_horizon_ms < 0 then
    raise exception 'whatsapp_send_rate_take: invalid arguments' using errcode = '22023';
  end if;
  select s.next_slot_at into v_next
    from public.whatsapp_send_rate_slots s where s.key = p_key for update;
  if not found then
    insert into public.whatsapp_send_rate_slots (key, next_slot_at)
    values (p_key, '-infinity') on conflict (key) do nothing;
    select s.next_slot_at into v_next
      from public.whatsapp_send_rate_slots s where s.key = p_key for update;
  end if;
  v_now := clock_timestamp();
  v_start := greatest(v_next, v_now);
  v_lead_ms := extract(epoch from (v_start - v_now)) * 1000;
  if v_lead_ms > p_horizon_ms then
    return query select 0, v_lead_ms, v_lead_ms - p_horizon_ms;
    return;
  end if;
  update public.whatsapp_send_rate_slots s
     set next_slot_at = v_start + make_interval(secs => p_want * p_interval_ms / 1000.0),
         updated_at = v_now
   where s.key = p_key;
  return query select p_want, v_lead_ms, 0::double precision;
end
$$;

revoke execute on function public.whatsapp_send_rate_take(text, double precision, integer, double precision)
  from public, anon, authenticated;
grant execute on function public.whatsapp_send_rate_take(text, double precision, integer, double precision)
  to service_role;
