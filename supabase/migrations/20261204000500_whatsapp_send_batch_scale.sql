-- Send batches of up to 100,000 recipients (whatsapp-send-batch, SEND_MAX_RECIPIENTS) at a flat
-- cost per recipient:
--
-- * a batch's size is bounded by the function's configuration, not by a constant of the schema
--   (the check keeps a hard ceiling of 1,000,000, the largest SEND_MAX_RECIPIENTS accepted);
-- * counts per status (and delivered / read) are kept in public.whatsapp_send_batch_counts, one row
--   per batch, by statement-level triggers on the recipients (transition tables: one counts write
--   per statement and batch, whoever writes — the function, the status reconciliation from
--   public.whatsapp_messages, the service role through the Data API). The progress GET, the send
--   route and the drain schedule read that row instead of counting a batch's recipients;
-- * the drain's "when is the next backing-off recipient due" is one index probe
--   (whatsapp_send_recipients_pending_due_idx), the drain schedule reads the counts row, and expired
--   leases are found through the (batch_id, status) index among the batch's processing rows only.

alter table public.whatsapp_send_batches
  drop constraint if exists whatsapp_send_batches_total_check;
alter table public.whatsapp_send_batches
  add constraint whatsapp_send_batches_total_check check (total between 1 and 1000000);

create table if not exists public.whatsapp_send_batch_counts (
  batch_id uuid primary key references public.whatsapp_send_batches (id) on delete cascade,
  pending integer not null default 0,
  processing integer not null default 0,
  sent integer not null default 0,
  failed integer not null default 0,
  unknown integer not null default 0,
  -- Recipients with delivered_at / read_at set (status webhooks).
  delivered integer not null default 0,
  read integer not null default 0
);

comment on table public.whatsapp_send_batch_counts is
  'Recipients per status of each send batch, kept by triggers on whatsapp_send_recipients; read by whatsapp-send-batch.';

-- Written by the triggers and read by the function's own connection; nothing for the Data API
-- roles (a user's progress comes from the function, or from counting their own recipients).
alter table public.whatsapp_send_batch_counts enable row level security;
revoke all on public.whatsapp_send_batch_counts from public, anon, authenticated;
grant select, insert, update, delete on public.whatsapp_send_batch_counts to service_role;

-- One counts write per statement and batch: the rows a statement inserted, changed or deleted,
-- aggregated per batch (+1 for the new image, -1 for the old one); a statement that changed no
-- counted column writes nothing.
create or replace function public.whatsapp_send_count_recipients()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into public.whatsapp_send_batch_counts as c
      (batch_id, pending, processing, sent, failed, unknown, delivered, read)
    select n.batch_id,
           count(*) filter (where n.status = 'pending'),
           count(*) filter (where n.status = 'processing'),
           count(*) filter (where n.status = 'sent'),
           count(*) filter (where n.status = 'failed'),
           count(*) filter (where n.status = 'unknown'),
           count(*) filter (where n.delivered_at is not null),
           count(*) filter (where n.read_at is not null)
      from new_rows n
     group by n.batch_id
    on conflict (batch_id) do update
       set pending = c.pending + excluded.pending,
           processing = c.processing + excluded.processing,
           sent = c.sent + excluded.sent,
           failed = c.failed + excluded.failed,
           unknown = c.unknown + excluded.unknown,
           delivered = c.delivered + excluded.delivered,
           read = c.read + excluded.read;
  elsif tg_op = 'UPDATE' then
    update public.whatsapp_send_batch_counts c
       set pending = c.pending + d.pending,
           processing = c.processing + d.processing,
           sent = c.sent + d.sent,
           failed = c.failed + d.failed,
           unknown = c.unknown + d.unknown,
           delivered = c.delivered + d.delivered,
           read = c.read + d.read
      from (
        select x.batch_id,
               coalesce(sum(x.k) filter (where x.status = 'pending'), 0)::integer as pending,
               coalesce(sum(x.k) filter (where x.status = 'processing'), 0)::integer as processing,
               coalesce(sum(x.k) filter (where x.status = 'sent'), 0)::integer as sent,
               coalesce(sum(x.k) filter (where x.status = 'failed'), 0)::integer as failed,
               coalesce(sum(x.k) filter (where x.status = 'unknown'), 0)::integer as unknown,
               coalesce(sum(x.k) filter (where x.delivered), 0)::integer as delivered,
               coalesce(sum(x.k) filter (where x.read), 0)::integer as read
          from (
            select n.batch_id, n.status, n.delivered_at is not null as delivered,
                   n.read_at is not null as read, 1 as k
              from new_rows n
            union all
            select o.batch_id, o.status, o.delivered_at is not null, o.read_at is not null, -1
              from old_rows o
          ) x
         group by x.batch_id
      ) d
     where c.batch_id = d.batch_id
       and (d.pending, d.processing, d.sent, d.failed, d.unknown, d.delivered, d.read)
           is distinct from (0, 0, 0, 0, 0, 0, 0);
  else
    update public.whatsapp_send_batch_counts c
       set pending = c.pending - d.pending,
           processing = c.processing - d.processing,
           sent = c.sent - d.sent,
           failed = c.failed - d.failed,
           unknown = c.unknown - d.unknown,
           delivered = c.delivered - d.delivered,
           read = c.read - d.read
      from (
        select o.batch_id,
               count(*) filter (where o.status = 'pending')::integer as pending,
               count(*) filter (where o.status = 'processing')::integer as processing,
               count(*) filter (where o.status = 'sent')::integer as sent,
               count(*) filter (where o.status = 'failed')::integer as failed,
               count(*) filter (where o.status = 'unknown')::integer as unknown,
               count(*) filter (where o.delivered_at is not null)::integer as delivered,
               count(*) filter (where o.read_at is not null)::integer as read
          from old_rows o
         group by o.batch_id
      ) d
     where c.batch_id = d.batch_id;
  end if;
  return null;
end
$$;

revoke all on function public.whatsapp_send_count_recipients() from public, anon, authenticated;
grant execute on function public.whatsapp_send_count_recipients() to service_role;

drop trigger if exists whatsapp_send_recipients_count_insert on public.whatsapp_send_recipients;
create trigger whatsapp_send_recipients_count_insert
  after insert on public.whatsapp_send_recipients
  referencing new table as new_rows
  for each statement execute function public.whatsapp_send_count_recipients();

drop trigger if exists whatsapp_send_recipients_count_update on public.whatsapp_send_recipients;
create trigger whatsapp_send_recipients_count_update
  after update on public.whatsapp_send_recipients
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.whatsapp_send_count_recipients();

drop trigger if exists whatsapp_send_recipients_count_delete on public.whatsapp_send_recipients;
create trigger whatsapp_send_recipients_count_delete
  after delete on public.whatsapp_send_recipients
  referencing old table as old_rows
  for each statement execute function public.whatsapp_send_count_recipients();

-- Batches created before this migration: counted once, here.
insert into public.whatsapp_send_batch_counts
  (batch_id, pending, processing, sent, failed, unknown, delivered, read)
select r.batch_id,
       count(*) filter (where r.status = 'pending'),
       count(*) filter (where r.status = 'processing'),
       count(*) filter (where r.status = 'sent'),
       count(*) filter (where r.status = 'failed'),
       count(*) filter (where r.status = 'unknown'),
       count(*) filter (where r.delivered_at is not null),
       count(*) filter (where r.read_at is not null)
  from public.whatsapp_send_recipients r
 group by r.batch_id
on conflict (batch_id) do nothing;

-- The next backing-off recipient of a batch: one probe (nulls first: due now).
create index if not exists whatsapp_send_recipients_pending_due_idx
  on public.whatsapp_send_recipients (batch_id, not_before nulls first)
  where status = 'pending';

-- Batches that still have work: sent at least once, no live drain, and pending recipients or
-- processing ones whose lease lapsed (looked up among the batch's processing rows only).
create or replace function public.whatsapp_send_batches_to_drain(p_limit integer default 100)
returns table (batch_id uuid)
language sql
stable
set search_path = ''
as $$
  select b.id from public.whatsapp_send_batches b
    join public.whatsapp_send_batch_counts c on c.batch_id = b.id
   where b.send_requested_at is not null
     and (b.drain_lease_until is null or b.drain_lease_until < now())
     and (c.pending > 0 or (c.processing > 0 and exists (
       select 1 from public.whatsapp_send_recipients r
        where r.batch_id = b.id and r.status = 'processing' and r.lease_until < now()
     )))
   order by b.send_requested_at
   limit p_limit
$$;

revoke all on function public.whatsapp_send_batches_to_drain(integer) from public, anon, authenticated;
grant execute on function public.whatsapp_send_batches_to_drain(integer) to service_role;
