-- Read tables of the marketplace's conversations, vetting and matching (seed 000): chats,
-- messages, vetting_results and matches. Projections only, rebuilt from the log like the rest.

create table marketplace.chats (
    id                   uuid primary key,
    type                 text        not null,
    participants         uuid[]      not null,
    project_id           uuid,
    support_request_id   text,
    title                text,
    last_message_at      timestamptz,
    last_message_preview text,
    status               text        not null,
    created_by           uuid        not null,
    created_at           timestamptz not null,
    updated_at           timestamptz not null
);
create index chats_by_project on marketplace.chats (project_id);
create index chats_by_participant on marketplace.chats using gin (participants);
create index chats_by_type on marketplace.chats (type);
create index chats_by_last_message on marketplace.chats (last_message_at);

create table marketplace.messages (
    id           uuid primary key,
    chat_id      uuid        not null,
    sender_id    uuid        not null,
    sender_role  text        not null,
    content      text        not null,
    content_type text        not null,
    attachments  jsonb       not null default '[]',
    is_pinned    boolean     not null default false,
    is_deleted   boolean     not null default false,
    deleted_at   timestamptz,
    deleted_by   uuid,
    -- [{userId, readAt}]
    read_by      jsonb       not null default '[]',
    created_at   timestamptz not null,
    updated_at   timestamptz not null
);
create index messages_by_chat on marketplace.messages (chat_id, created_at);
create index messages_by_sender on marketplace.messages (sender_id);
create index messages_by_pinned on marketplace.messages (chat_id, is_pinned);

-- The current view of one freelancer's vetting (the id is the freelancer's); every recorded
-- result, corrections included, stays in the vetting stream's history.
create table marketplace.vetting_results (
    id                    uuid primary key,
    freelancer_id         uuid        not null,
    identity_verification jsonb,
    english_proficiency   jsonb,
    skill_assessments     jsonb       not null default '[]',
    -- 0..=100 with two decimals (basis points / 100).
    overall_score         numeric(5, 2) not null default 0,
    status                text        not null,
    reviewed_by           uuid,
    reviewed_at           timestamptz,
    review_notes          text,
    created_at            timestamptz not null,
    updated_at            timestamptz not null
);
create index vetting_results_by_freelancer on marketplace.vetting_results (freelancer_id);
create index vetting_results_by_status on marketplace.vetting_results (status);
create index vetting_results_by_score on marketplace.vetting_results (overall_score);

create table marketplace.matches (
    id                uuid primary key,
    project_id        uuid        not null,
    freelancer_id     uuid        not null,
    client_id         uuid        not null,
    score             integer     not null,
    confidence        text        not null,
    scoring_breakdown jsonb       not null,
    explanation       text        not null,
    status            text        not null,
    client_action     text,
    client_action_at  timestamptz,
    rejection_reason  text,
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    expires_at        timestamptz
);
create index matches_by_project on marketplace.matches (project_id, score);
create index matches_by_freelancer on marketplace.matches (freelancer_id);
create index matches_by_status on marketplace.matches (status);
create index matches_by_expires on marketplace.matches (expires_at);
