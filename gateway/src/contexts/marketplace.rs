//! The marketplace context (seed 000): users and roles, and the escrow money path (projects,
//! milestones, disputes, payments). The actor and its role always come from the session.

use crate::app::AppState;
use crate::auth::Caller;
use crate::contexts::{map_exec, Kind};
use crate::error::ApiError;
use crate::registry::{command, replay_states, Access, Auth, CommandReply, ContextModule, ContextRole, TableSpec};
use commands::CommandContext;
use domain::kernel::Aggregate;
use domain::marketplace::chat::{self, Chat, ChatAction, ChatCommand};
use domain::marketplace::matching::{self, Match, MatchAction, MatchCommand};
use domain::marketplace::payment::{self, Payment, PaymentAction, PaymentCommand};
use domain::marketplace::project::{self, Project, ProjectAction, ProjectCommand, ProjectError};
use domain::marketplace::user::{self, User, UserAction, UserCommand, UserError};
use domain::marketplace::vetting::{self, Vetting, VettingAction, VettingCommand};
use domain::marketplace::{Actor, Role};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

fn user_kind(e: &UserError) -> Kind {
    match e.kind() {
        user::ErrorKind::Forbidden => Kind::Forbidden,
        user::ErrorKind::NotFound => Kind::NotFound,
        user::ErrorKind::Conflict => Kind::Conflict,
        user::ErrorKind::Invalid => Kind::Invalid,
    }
}

/// The project, chat, vetting, match and payment aggregates share one error classification.
fn domain_kind(kind: project::ErrorKind) -> Kind {
    match kind {
        project::ErrorKind::Forbidden => Kind::Forbidden,
        project::ErrorKind::NotFound => Kind::NotFound,
        project::ErrorKind::Conflict => Kind::Conflict,
        project::ErrorKind::Invalid => Kind::Invalid,
    }
}

fn project_kind(e: &ProjectError) -> Kind {
    domain_kind(e.kind())
}

/// The marketplace actor behind a request: the scheduler, or the session's account with its
/// marketplace role. A suspended user can send no command at all.
pub async fn actor(state: &AppState, caller: &Caller) -> Result<Actor, ApiError> {
    if caller.is_system() {
        return Ok(Actor::system());
    }
    let id = caller.require()?;
    let (u, _) = state.bus.load::<User>(&user::stream_id(id)).await.map_err(|e| map_exec(e, user_kind))?;
    let role = u.role().ok_or_else(|| ApiError::Forbidden("join the marketplace first (join-marketplace)".into()))?;
    if u.is_suspended() {
        return Err(ApiError::Forbidden("this user is suspended".into()));
    }
    Ok(Actor { id, role })
}

fn stamp(ctx: CommandContext, actor: &Actor) -> CommandContext {
    CommandContext { actor_id: Some(actor.id.to_string()), actor_role: Some(actor.role.as_str().to_owned()), ..ctx }
}

async fn run_user(
    state: &AppState,
    actor: Actor,
    action: UserAction,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let command = UserCommand { actor, at: ctx.at, action };
    let stream = command.stream_id();
    let result =
        state.bus.execute::<User>(stream, command, stamp(ctx, &actor)).await.map_err(|e| map_exec(e, user_kind))?;
    Ok(CommandReply::ok(result))
}

/// Runs a command on one stream of aggregate `A`, stamped with the actor.
async fn run_on<A: Aggregate>(
    state: &AppState,
    actor: &Actor,
    stream: String,
    command: A::Command,
    ctx: CommandContext,
    kind: fn(&A::Error) -> Kind,
) -> Result<CommandReply, ApiError>
where
    A::Error: std::fmt::Display,
{
    let result = state.bus.execute::<A>(stream, command, stamp(ctx, actor)).await.map_err(|e| map_exec(e, kind))?;
    Ok(CommandReply::ok(result))
}

async fn run_chat(
    state: &AppState,
    actor: Actor,
    action: ChatAction,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let command = ChatCommand { actor, at: ctx.at, action };
    run_on::<Chat>(state, &actor, command.stream_id(), command, ctx, |e| domain_kind(e.kind())).await
}

async fn run_vetting(
    state: &AppState,
    actor: Actor,
    action: VettingAction,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let command = VettingCommand { actor, at: ctx.at, action };
    run_on::<Vetting>(state, &actor, command.stream_id(), command, ctx, |e| domain_kind(e.kind())).await
}

async fn run_match(
    state: &AppState,
    actor: Actor,
    action: MatchAction,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let command = MatchCommand { actor, at: ctx.at, action };
    run_on::<Match>(state, &actor, command.stream_id(), command, ctx, |e| domain_kind(e.kind())).await
}

async fn run_project(
    state: &AppState,
    actor: Actor,
    project_id: Uuid,
    action: ProjectAction,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let command = ProjectCommand { actor, at: ctx.at, action };
    let result = state
        .bus
        .execute::<Project>(project::stream_id(project_id), command, stamp(ctx, &actor))
        .await
        .map_err(|e| map_exec(e, project_kind))?;
    Ok(CommandReply::ok(result))
}

/// The operator CLI's first admin: a marketplace profile with the admin role.
pub async fn appoint(
    state: &AppState,
    account: Uuid,
    email: &str,
    name: &str,
    role: Role,
    ctx: CommandContext,
) -> Result<(), ApiError> {
    let action =
        UserAction::Appoint(user::Appoint { user_id: account, email: email.to_owned(), name: name.to_owned(), role });
    run_user(state, Actor::system(), action, ctx).await.map(|_| ())
}

/// `join-marketplace`: the e-mail and (by default) the name come from the account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinMarketplaceBody {
    pub role: user::JoinRole,
    pub name: Option<String>,
}

async fn join(
    state: AppState,
    caller: Caller,
    body: JoinMarketplaceBody,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let id = caller.require()?;
    let (account, _) = state
        .bus
        .load::<domain::identity::account::Account>(&domain::identity::account::stream_id(id))
        .await
        .map_err(ApiError::internal)?;
    let email =
        account.email().map(|e| e.as_str().to_owned()).ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    let actor = Actor { id, role: body.role.into() };
    let action = UserAction::JoinMarketplace(user::JoinMarketplace {
        role: body.role,
        name: body.name.unwrap_or_else(|| account.name().to_owned()),
        email,
    });
    let mut reply = run_user(&state, actor, action, ctx).await?;
    reply.created = true;
    Ok(reply)
}

/// A command whose body is the domain payload and whose stream is a user.
macro_rules! user_command {
    ($name:literal, $who:literal, $payload:ty, $variant:ident) => {
        command::<$payload, _, _>("marketplace", $name, $who, Auth::SignedIn, |state, caller, body, ctx| async move {
            let actor = actor(&state, &caller).await?;
            run_user(&state, actor, UserAction::$variant(body), ctx).await
        })
    };
}

/// A command whose body is the domain payload and whose stream is the body's project.
macro_rules! project_command {
    ($name:literal, $who:literal, $payload:ty, $variant:ident) => {
        command::<$payload, _, _>("marketplace", $name, $who, Auth::SignedIn, |state, caller, body, ctx| async move {
            let actor = actor(&state, &caller).await?;
            let project_id = body.project_id;
            run_project(&state, actor, project_id, ProjectAction::$variant(body), ctx).await
        })
    };
}

/// A command whose body is the domain payload and whose stream is the body's chat.
macro_rules! chat_command {
    ($name:literal, $who:literal, $payload:ty) => {
        command::<$payload, _, _>("marketplace", $name, $who, Auth::SignedIn, |state, caller, body, ctx| async move {
            let actor = actor(&state, &caller).await?;
            run_chat(&state, actor, body.into(), ctx).await
        })
    };
}

/// A command whose body is the domain payload and whose stream is the body's freelancer's vetting.
macro_rules! vetting_command {
    ($name:literal, $who:literal, $payload:ty) => {
        command::<$payload, _, _>("marketplace", $name, $who, Auth::SignedIn, |state, caller, body, ctx| async move {
            let actor = actor(&state, &caller).await?;
            run_vetting(&state, actor, body.into(), ctx).await
        })
    };
}

async fn role_of(state: AppState, account: Uuid) -> Result<Option<ContextRole>, ApiError> {
    let (u, _) = state.bus.load::<User>(&user::stream_id(account)).await.map_err(|e| map_exec(e, user_kind))?;
    Ok(u.role().map(|r| ContextRole {
        role: r.as_str().to_owned(),
        staff: matches!(r, Role::Admin | Role::Moderator),
        suspended: u.is_suspended(),
    }))
}

/// Messages of chats the caller takes part in.
const CHAT_PARTICIPANT: &str =
    "t.chat_id in (select c.id from marketplace.chats c where {caller}::uuid = any(c.participants))";

/// Rows of tables hanging off a project: visible to that project's client and freelancer.
const PROJECT_PARTY: &str = "t.project_id in (select p.id from marketplace.projects p
    where p.client_id::text = {caller} or p.matched_freelancer_id::text = {caller})";

pub fn module() -> ContextModule {
    let mut commands = vec![
        command::<JoinMarketplaceBody, _, _>(
            "marketplace",
            "join-marketplace",
            "any signed-in account, as client or freelancer",
            Auth::SignedIn,
            join,
        ),
        user_command!("change-role", "admins", user::ChangeRole, ChangeRole),
        user_command!(
            "update-client-profile",
            "the client themself or an admin",
            user::UpdateClientProfile,
            UpdateClientProfile
        ),
        user_command!(
            "update-freelancer-profile",
            "the freelancer themself or an admin",
            user::UpdateFreelancerProfile,
            UpdateFreelancerProfile
        ),
        user_command!("suspend-user", "admins and moderators", user::SuspendUser, SuspendUser),
        user_command!("reinstate-user", "admins and moderators", user::ReinstateUser, ReinstateUser),
    ];
    commands.extend(project_commands());
    commands.extend(chat_commands());
    commands.extend(vetting_commands());
    commands.extend(match_commands());
    commands.push(command::<payment::RecordPaymentWebhook, _, _>(
        "marketplace",
        "record-payment-webhook",
        "the payment provider's signed webhook (POST /v1/marketplace/webhooks/payments), or an admin replaying one",
        Auth::SignedIn,
        record_payment_webhook,
    ));
    ContextModule {
        name: "marketplace",
        commands,
        tables: vec![
            TableSpec {
                context: "marketplace",
                name: "users",
                table: "marketplace.users",
                access: Access::Own(&["id"]),
                hidden: &["password_hash"],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "projects",
                table: "marketplace.projects",
                access: Access::Own(&["client_id", "matched_freelancer_id"]),
                hidden: &[],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "milestones",
                table: "marketplace.milestones",
                access: Access::OwnWhere(PROJECT_PARTY),
                hidden: &[],
                extra_indexes: &[("by_project_in_order", &["project_id", "sort_order"])],
            },
            TableSpec {
                context: "marketplace",
                name: "disputes",
                table: "marketplace.disputes",
                access: Access::OwnWhere(PROJECT_PARTY),
                hidden: &[],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "payments",
                table: "marketplace.payments",
                access: Access::OwnWhere(PROJECT_PARTY),
                hidden: &[],
                extra_indexes: &[("by_project_in_time", &["project_id", "created_at"])],
            },
            TableSpec {
                context: "marketplace",
                name: "audit_logs",
                table: "marketplace.audit_logs",
                access: Access::Staff,
                hidden: &[],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "chats",
                table: "marketplace.chats",
                access: Access::Own(&["participants"]),
                hidden: &[],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "messages",
                table: "marketplace.messages",
                access: Access::OwnWhere(CHAT_PARTICIPANT),
                hidden: &[],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "vetting_results",
                table: "marketplace.vetting_results",
                access: Access::Own(&["freelancer_id"]),
                hidden: &[],
                extra_indexes: &[],
            },
            TableSpec {
                context: "marketplace",
                name: "matches",
                table: "marketplace.matches",
                access: Access::Own(&["client_id", "freelancer_id"]),
                hidden: &[],
                extra_indexes: &[],
            },
        ],
        projectors: projections::marketplace::projectors(),
        replayers: vec![
            ("marketplace.user", replay_states::<User>),
            ("marketplace.project", replay_states::<Project>),
            (chat::STREAM_TYPE, replay_states::<Chat>),
            (vetting::STREAM_TYPE, replay_states::<Vetting>),
            (matching::STREAM_TYPE, replay_states::<Match>),
            (payment::STREAM_TYPE, replay_states::<Payment>),
        ],
        upcasters: |_| {},
        role_of: Some(|state, account| Box::pin(role_of(state, account))),
        routes: Some(super::marketplace_routes::routes),
        route_docs: super::marketplace_routes::ROUTE_DOCS,
    }
}

fn project_commands() -> Vec<crate::registry::CommandSpec> {
    vec![
        command::<project::CreateProject, _, _>(
            "marketplace",
            "create-project",
            "clients",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                let project_id = body.project_id;
                let mut reply = run_project(&state, actor, project_id, ProjectAction::Create(body), ctx).await?;
                reply.created = true;
                Ok(reply.with(json!({ "projectId": project_id })))
            },
        ),
        project_command!(
            "update-intake-form",
            "the project's client, in draft",
            project::UpdateIntakeForm,
            UpdateIntakeForm
        ),
        project_command!(
            "submit-project-for-funding",
            "the project's client",
            project::SubmitProjectForFunding,
            SubmitProjectForFunding
        ),
        project_command!("start-matching", "the project's client or an admin", project::StartMatching, StartMatching),
        project_command!(
            "complete-project",
            "the project's client or an admin (every milestone paid)",
            project::CompleteProject,
            CompleteProject
        ),
        project_command!(
            "cancel-project",
            "the project's client before work starts, or an admin (refunds unreleased escrow)",
            project::CancelProject,
            CancelProject
        ),
        project_command!("add-milestone", "the project's client", project::AddMilestone, AddMilestone),
        project_command!("fund-project", "the project's client", project::FundProject, FundProject),
        project_command!("fund-milestone", "the project's client", project::FundMilestone, FundMilestone),
        command::<AcceptMatchBody, _, _>(
            "marketplace",
            "accept-match",
            "the project's client: a proposal (`matchId`), or a freelancer directly (`projectId`, `freelancerId`)",
            Auth::SignedIn,
            accept_match,
        ),
        project_command!(
            "start-project",
            "the project's client or matched freelancer (matched → in_progress)",
            project::StartProject,
            StartProject
        ),
        project_command!(
            "add-dispute-evidence",
            "the project's parties, the assigned moderator or an admin",
            project::AddDisputeEvidence,
            AddDisputeEvidence
        ),
        project_command!(
            "escalate-dispute",
            "the project's parties or the assigned moderator",
            project::EscalateDispute,
            EscalateDispute
        ),
        project_command!(
            "close-dispute",
            "the assigned moderator or an admin (resolved disputes only)",
            project::CloseDispute,
            CloseDispute
        ),
        project_command!(
            "start-milestone",
            "the project's freelancer (or client)",
            project::StartMilestone,
            StartMilestone
        ),
        project_command!("submit-milestone", "the project's freelancer", project::SubmitMilestone, SubmitMilestone),
        project_command!("approve-milestone", "the project's client", project::ApproveMilestone, ApproveMilestone),
        project_command!("reject-milestone", "the project's client", project::RejectMilestone, RejectMilestone),
        project_command!(
            "release-milestone-payment",
            "the project's client, or the scheduler 48 h after approval",
            project::ReleaseMilestonePayment,
            ReleaseMilestonePayment
        ),
        project_command!("open-dispute", "the project's client or freelancer", project::OpenDispute, OpenDispute),
        command::<project::AssignModerator, _, _>(
            "marketplace",
            "assign-moderator",
            "admins (the assignee must be a moderator)",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                let target = role_of(state.clone(), body.moderator_id).await?;
                if actor.role == Role::Admin && !target.is_some_and(|r| r.role == "moderator" && !r.suspended) {
                    return Err(ApiError::Invalid("moderatorId: not an active moderator".into()));
                }
                let project_id = body.project_id;
                run_project(&state, actor, project_id, ProjectAction::AssignModerator(body), ctx).await
            },
        ),
        project_command!(
            "resolve-dispute",
            "the assigned moderator or an admin",
            project::ResolveDispute,
            ResolveDispute
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Matching

/// `accept-match`: a proposal by its id (the match stream records the answer; the project follows
/// through the matching process manager), or a freelancer chosen directly on the project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AcceptMatchBody {
    Proposal(matching::AcceptMatch),
    Direct(project::AcceptMatch),
}

async fn accept_match(
    state: AppState,
    caller: Caller,
    body: AcceptMatchBody,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let p = match body {
        AcceptMatchBody::Direct(p) => {
            return run_project(&state, actor, p.project_id, ProjectAction::AcceptMatch(p), ctx).await
        }
        AcceptMatchBody::Proposal(p) => p,
    };
    let (proposal, _) = state
        .bus
        .load::<Match>(&matching::stream_id(p.match_id))
        .await
        .map_err(|e| map_exec(e, |e| domain_kind(e.kind())))?;
    let (Some(project_id), Some(freelancer_id)) = (proposal.project_id(), proposal.freelancer_id()) else {
        return Err(ApiError::NotFound(format!("no match {}", p.match_id)));
    };
    // Refuse up front what the project would refuse, so an accepted proposal is (but for a race)
    // always one the project can follow; the match aggregate decides who may answer.
    let (project, _) =
        state.bus.load::<Project>(&project::stream_id(project_id)).await.map_err(|e| map_exec(e, project_kind))?;
    if proposal.client_id() == Some(actor.id) {
        if let Some(matched) = project.matched_freelancer_id() {
            return Err(ApiError::Conflict(format!("the project is already matched with {matched}")));
        }
        if !matches!(project.status, project::ProjectStatus::Funded | project::ProjectStatus::Matching) {
            return Err(ApiError::Conflict(format!("cannot accept a match: the project is {}", project.status)));
        }
    }
    let reply = run_match(&state, actor, MatchAction::AcceptMatch(p.clone()), ctx.clone()).await?;
    // Follow through at once; the process manager sends the same (idempotent) command again, so
    // a failure here is only logged.
    let follow = project::AcceptMatch { project_id, freelancer_id, match_id: Some(p.match_id) };
    let mut follow_ctx = CommandContext::new("accept-match", ctx.at);
    follow_ctx.correlation_id = ctx.correlation_id;
    follow_ctx.causation_id = Some(ctx.command_id);
    follow_ctx.client_ip = ctx.client_ip.clone();
    follow_ctx.user_agent = ctx.user_agent.clone();
    if let Err(error) = run_project(&state, actor, project_id, ProjectAction::AcceptMatch(follow), follow_ctx).await {
        tracing::warn!(%error, match_id = %p.match_id, %project_id, "the project did not follow the accepted match yet; the process manager retries");
    }
    Ok(reply.with(json!({ "matchId": p.match_id, "projectId": project_id, "freelancerId": freelancer_id })))
}

/// `generate-matches`: which project to match.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateMatchesBody {
    pub project_id: Uuid,
    /// How many proposals at most (best first); 5 by default, at most 20.
    #[serde(default)]
    pub limit: Option<u8>,
}

/// Active freelancers with what the matcher scores: skills, availability and timezone from the
/// profile, the vetting's overall score (not for rejected vettings), completed projects and lost
/// disputes. There is no rating source in the seed yet, so ratings stay unknown (neutral).
async fn candidates(state: &AppState, exclude: Uuid) -> Result<Vec<matching::Candidate>, ApiError> {
    let rows: Vec<(Uuid, serde_json::Value, Option<f64>, i64, i64)> = sqlx::query_as(
        "select u.id, u.profile,
                (select (v.overall_score * 100)::float8 from marketplace.vetting_results v
                  where v.freelancer_id = u.id and v.status <> 'rejected'),
                (select count(*) from marketplace.projects p where p.matched_freelancer_id = u.id and p.status = 'completed'),
                (select count(*) from marketplace.disputes d join marketplace.projects p on p.id = d.project_id
                  where p.matched_freelancer_id = u.id and d.status in ('resolved', 'closed')
                    and d.resolution->>'decision' in ('client_favor', 'replacement'))
         from marketplace.users u
         where u.role = 'freelancer' and u.status = 'active' and u.id <> $1",
    )
    .bind(exclude)
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, profile, vetting, completed, lost)| matching::Candidate {
            freelancer_id: id,
            skills: profile["skills"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            vetting_score_bp: vetting.map(|v| v.round() as i64),
            rating: None,
            availability: profile["availability"].as_str().map(str::to_owned),
            completed_projects: u32::try_from(completed).unwrap_or(u32::MAX),
            disputes_lost: u32::try_from(lost).unwrap_or(u32::MAX),
            timezone: profile["timezone"].as_str().map(str::to_owned),
        })
        .collect())
}

async fn generate_matches(
    state: AppState,
    caller: Caller,
    body: GenerateMatchesBody,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let (project, _) =
        state.bus.load::<Project>(&project::stream_id(body.project_id)).await.map_err(|e| map_exec(e, project_kind))?;
    let Some(client_id) = project.client_id() else {
        return Err(ApiError::NotFound("the project does not exist".into()));
    };
    if actor.id != client_id && actor.role != Role::Admin {
        return Err(ApiError::Forbidden("only the project's client or an admin may generate matches".into()));
    }
    if !matches!(project.status, project::ProjectStatus::Funded | project::ProjectStatus::Matching) {
        return Err(ApiError::Conflict(format!("cannot generate matches: the project is {}", project.status)));
    }
    let limit = usize::from(body.limit.unwrap_or(5).clamp(1, 20));
    let client_timezone: Option<String> =
        sqlx::query_scalar("select profile->>'timezone' from marketplace.users where id = $1")
            .bind(client_id)
            .fetch_optional(&state.pool)
            .await?
            .flatten();
    // A freelancer who already has a pending proposal for this project is not proposed again.
    let pending: Vec<Uuid> = sqlx::query_scalar(
        "select freelancer_id from marketplace.matches where project_id = $1 and status = 'pending'",
    )
    .bind(body.project_id)
    .fetch_all(&state.pool)
    .await?;
    let pool: Vec<matching::Candidate> =
        candidates(&state, client_id).await?.into_iter().filter(|c| !pending.contains(&c.freelancer_id)).collect();
    let requirements =
        matching::Requirements { required_skills: project.intake_form.required_skills.clone(), client_timezone };
    let ranked: Vec<(Uuid, matching::Scored)> = matching::rank(&requirements, &pool).into_iter().take(limit).collect();
    if ranked.is_empty() {
        return Err(ApiError::Conflict("no freelancer is available to match".into()));
    }
    let mut last = None;
    let mut proposals = Vec::new();
    for (freelancer_id, scored) in ranked {
        // One stream per proposal; with an Idempotency-Key each proposal gets a key (and an id)
        // of its own, so a replayed request answers with the same proposals.
        let mut one = ctx.clone();
        let match_id = match &ctx.idempotency {
            Some(key) => {
                let mut key = key.clone();
                key.key = format!("{}:{freelancer_id}", key.key);
                let id = Uuid::new_v5(&body.project_id, key.key.as_bytes());
                one.idempotency = Some(key);
                id
            }
            None => Uuid::now_v7(),
        };
        let record = matching::RecordMatch {
            match_id,
            project_id: body.project_id,
            freelancer_id,
            client_id,
            expires_at: matching::default_expiry(ctx.at),
            scored: scored.clone(),
        };
        let reply = run_match(&state, actor, MatchAction::RecordMatch(record), one).await?;
        proposals.push(json!({ "matchId": match_id, "freelancerId": freelancer_id, "score": scored.score, "confidence": scored.confidence }));
        last = Some(reply);
    }
    let mut reply = last.expect("at least one proposal");
    reply.created = true;
    Ok(reply.with(json!({ "matches": proposals })))
}

fn match_commands() -> Vec<crate::registry::CommandSpec> {
    vec![
        command::<GenerateMatchesBody, _, _>(
            "marketplace",
            "generate-matches",
            "the project's client or an admin (funded or matching projects)",
            Auth::SignedIn,
            generate_matches,
        ),
        command::<matching::RejectMatch, _, _>(
            "marketplace",
            "reject-match",
            "the project's client, while the proposal is pending",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                run_match(&state, actor, MatchAction::RejectMatch(body), ctx).await
            },
        ),
        command::<matching::ExpireMatch, _, _>(
            "marketplace",
            "expire-match",
            "the scheduler, 7 days after the proposal",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                run_match(&state, actor, MatchAction::ExpireMatch(body), ctx).await
            },
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Chats

async fn create_chat(
    state: AppState,
    caller: Caller,
    body: chat::CreateChat,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    if let Some(project_id) = body.project_id {
        let (project, _) =
            state.bus.load::<Project>(&project::stream_id(project_id)).await.map_err(|e| map_exec(e, project_kind))?;
        if project.client_id().is_none() {
            return Err(ApiError::Invalid(format!("projectId: no project {project_id}")));
        }
        if !(project.is_participant(&actor) || actor.is_staff() || actor.role == Role::System) {
            return Err(ApiError::Forbidden("only the project's parties or staff may open its chat".into()));
        }
    }
    for participant in &body.participants {
        if role_of(state.clone(), *participant).await?.is_none() {
            return Err(ApiError::Invalid(format!("participants: {participant} is not a marketplace user")));
        }
    }
    let chat_id = body.chat_id;
    let mut reply = run_chat(&state, actor, ChatAction::CreateChat(body), ctx).await?;
    reply.created = true;
    Ok(reply.with(json!({ "chatId": chat_id })))
}

fn chat_commands() -> Vec<crate::registry::CommandSpec> {
    vec![
        command::<chat::CreateChat, _, _>(
            "marketplace",
            "create-chat",
            "any member among its participants (system chats: admins); project chats: the project's parties or staff",
            Auth::SignedIn,
            create_chat,
        ),
        chat_command!("archive-chat", "the chat's participants or staff", chat::ArchiveChat),
        chat_command!(
            "send-message",
            "the chat's participants (and staff); system messages: the system",
            chat::SendMessage
        ),
        chat_command!("pin-message", "the chat's participants or staff", chat::PinMessage),
        chat_command!("unpin-message", "the chat's participants or staff", chat::UnpinMessage),
        chat_command!("delete-message", "the sender, a moderator or an admin (soft delete)", chat::DeleteMessage),
        chat_command!("mark-messages-read", "the chat's participants (read receipts)", chat::MarkMessagesRead),
    ]
}

// ---------------------------------------------------------------------------------------------
// Vetting

async fn start_vetting(
    state: AppState,
    caller: Caller,
    body: vetting::StartVetting,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let target = role_of(state.clone(), body.freelancer_id).await?;
    if actor.role == Role::Admin && target.is_none_or(|r| r.role != "freelancer") {
        return Err(ApiError::Invalid("freelancerId: not a freelancer".into()));
    }
    let mut reply = run_vetting(&state, actor, VettingAction::StartVetting(body), ctx).await?;
    reply.created = true;
    Ok(reply)
}

fn vetting_commands() -> Vec<crate::registry::CommandSpec> {
    vec![
        command::<vetting::StartVetting, _, _>(
            "marketplace",
            "start-vetting",
            "the freelancer themself or an admin",
            Auth::SignedIn,
            start_vetting,
        ),
        vetting_command!(
            "record-identity-verification",
            "the identity provider's signed webhook (POST /v1/marketplace/webhooks/identity) or an admin",
            vetting::RecordIdentityVerification
        ),
        vetting_command!("record-english-proficiency", "the system or an admin", vetting::RecordEnglishProficiency),
        vetting_command!("record-skill-assessment", "the system or an admin", vetting::RecordSkillAssessment),
        vetting_command!("review-vetting", "admins (approve, flag or reject)", vetting::ReviewVetting),
    ]
}

// ---------------------------------------------------------------------------------------------
// Payments

/// Records what the provider reported about a payment. Only payments the marketplace created
/// (a row born from a project event) can be reported on; anything else is refused and logged.
async fn record_payment_webhook(
    state: AppState,
    caller: Caller,
    body: payment::RecordPaymentWebhook,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let known: Option<Uuid> = sqlx::query_scalar("select id from marketplace.payments where id = $1")
        .bind(body.payment_id)
        .fetch_optional(&state.pool)
        .await?;
    if known.is_none() {
        tracing::warn!(payment_id = %body.payment_id, webhook_event_id = %body.webhook_event_id, "webhook for an unknown payment refused");
        return Err(ApiError::WebhookRefused(format!("no payment {}", body.payment_id)));
    }
    let command = PaymentCommand { actor, at: ctx.at, action: PaymentAction::RecordWebhook(body) };
    run_on::<Payment>(&state, &actor, payment::stream_id(command.action.payment_id()), command, ctx, |e| {
        domain_kind(e.kind())
    })
    .await
}
