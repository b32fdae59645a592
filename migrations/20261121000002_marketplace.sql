-- Read tables of the marketplace (seed 000). Projections only: every row is derived from the
-- event log and can be rebuilt. Field names are the seed's in snake_case; times are timestamptz
-- (the seed's epoch-millisecond numbers); money is bigint minor units; nested objects are jsonb.
create schema if not exists marketplace;

create table marketplace.users (
    id              uuid primary key,
    email           text        not null,
    email_verified  boolean     not null default false,
    name            text        not null,
    auth_provider   text        not null default 'email',
    -- Credentials live in the identity context (argon2id, never projected); the column keeps the
    -- seed's shape and stays null.
    password_hash   text,
    role            text        not null,
    role_changed_at timestamptz,
    role_changed_by uuid,
    profile         jsonb       not null default '{}',
    status          text        not null default 'active',
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    last_login_at   timestamptz
);
create index users_by_email on marketplace.users (email);
create index users_by_role on marketplace.users (role);
create index users_by_status on marketplace.users (status);

create table marketplace.projects (
    id                       uuid primary key,
    client_id                uuid        not null,
    intake_form              jsonb       not null,
    status                   text        not null,
    matched_freelancer_id    uuid,
    matched_at               timestamptz,
    total_amount             bigint      not null,
    escrowed_amount          bigint      not null default 0,
    -- Percentage taken on releases (e.g. 10).
    platform_fee             integer     not null,
    currency                 text        not null,
    stripe_payment_intent_id text,
    stripe_customer_id       text,
    -- The ledger beside the escrow: funded = escrowed + released + refunded.
    funded_amount            bigint      not null default 0,
    released_amount          bigint      not null default 0,
    refunded_amount          bigint      not null default 0,
    fees_amount              bigint      not null default 0,
    created_at               timestamptz not null,
    updated_at               timestamptz not null,
    started_at               timestamptz,
    completed_at             timestamptz
);
create index projects_by_client on marketplace.projects (client_id);
create index projects_by_freelancer on marketplace.projects (matched_freelancer_id);
create index projects_by_status on marketplace.projects (status);
create index projects_by_created on marketplace.projects (created_at);

create table marketplace.milestones (
    id                       uuid primary key,
    project_id               uuid        not null,
    title                    text        not null,
    description              text        not null,
    -- The seed's `order` (an SQL keyword).
    sort_order               integer     not null,
    amount                   bigint      not null,
    currency                 text        not null,
    status                   text        not null,
    funded                   boolean     not null default false,
    deliverables             jsonb       not null default '[]',
    approved_by              uuid,
    approved_at              timestamptz,
    rejection_reason         text,
    stripe_payment_intent_id text,
    stripe_payout_id         text,
    due_date                 timestamptz not null,
    submitted_at             timestamptz,
    paid_at                  timestamptz,
    auto_release_at          timestamptz,
    created_at               timestamptz not null,
    updated_at               timestamptz not null
);
create index milestones_by_project on marketplace.milestones (project_id, sort_order);
create index milestones_by_status on marketplace.milestones (status);
create index milestones_by_auto_release on marketplace.milestones (auto_release_at);

create table marketplace.disputes (
    id                    uuid primary key,
    project_id            uuid        not null,
    milestone_id          uuid,
    initiator_id          uuid        not null,
    initiator_role        text        not null,
    type                  text        not null,
    reason                text        not null,
    description           text        not null,
    evidence              jsonb       not null default '[]',
    status                text        not null,
    resolution            jsonb,
    assigned_moderator_id uuid,
    assigned_at           timestamptz,
    locked_amount         bigint      not null,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    resolved_at           timestamptz
);
create index disputes_by_project on marketplace.disputes (project_id);
create index disputes_by_status on marketplace.disputes (status);
create index disputes_by_initiator on marketplace.disputes (initiator_id);
create index disputes_by_moderator on marketplace.disputes (assigned_moderator_id);

create table marketplace.payments (
    id                       uuid primary key,
    project_id               uuid        not null,
    milestone_id             uuid,
    dispute_id               uuid,
    type                     text        not null,
    amount                   bigint      not null,
    currency                 text        not null,
    platform_fee             bigint,
    net_amount               bigint      not null,
    stripe_payment_intent_id text,
    stripe_payout_id         text,
    stripe_transfer_id       text,
    stripe_customer_id       text,
    stripe_account_id        text,
    status                   text        not null,
    webhook_received         boolean     not null default false,
    webhook_received_at      timestamptz,
    webhook_event_id         text,
    error_message            text,
    created_at               timestamptz not null,
    updated_at               timestamptz not null,
    processed_at             timestamptz
);
create index payments_by_project on marketplace.payments (project_id, created_at);
create index payments_by_milestone on marketplace.payments (milestone_id);
create index payments_by_status on marketplace.payments (status);
create index payments_by_stripe_payment_intent on marketplace.payments (stripe_payment_intent_id);
create index payments_by_webhook on marketplace.payments (webhook_received);

-- One row per marketplace (and identity) event: who did what to what, from where.
create table marketplace.audit_logs (
    id          uuid primary key,
    action      text        not null,
    action_type text        not null,
    actor_id    text        not null,
    actor_role  text        not null,
    target_type text,
    target_id   text,
    details     jsonb,
    ip_address  text,
    user_agent  text,
    stream_id   text        not null,
    position    bigint      not null,
    created_at  timestamptz not null
);
create index audit_logs_by_action on marketplace.audit_logs (action);
create index audit_logs_by_actor on marketplace.audit_logs (actor_id);
create index audit_logs_by_target on marketplace.audit_logs (target_type, target_id);
create index audit_logs_by_created on marketplace.audit_logs (created_at);
