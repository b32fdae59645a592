//! The marketplace context (seed 000): users and roles, and the escrow money path (projects,
//! milestones, disputes, payments). The actor and its role always come from the session.

use crate::app::AppState;
use crate::auth::Caller;
use crate::contexts::{map_exec, Kind};
use crate::error::ApiError;
use crate::registry::{command, replay_states, Access, Auth, CommandReply, ContextModule, ContextRole, TableSpec};
use commands::CommandContext;
use domain::marketplace::project::{self, Project, ProjectAction, ProjectCommand, ProjectError};
use domain::marketplace::user::{self, User, UserAction, UserCommand, UserError};
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

fn project_kind(e: &ProjectError) -> Kind {
    match e.kind() {
        project::ErrorKind::Forbidden => Kind::Forbidden,
        project::ErrorKind::NotFound => Kind::NotFound,
        project::ErrorKind::Conflict => Kind::Conflict,
        project::ErrorKind::Invalid => Kind::Invalid,
    }
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

async fn role_of(state: AppState, account: Uuid) -> Result<Option<ContextRole>, ApiError> {
    let (u, _) = state.bus.load::<User>(&user::stream_id(account)).await.map_err(|e| map_exec(e, user_kind))?;
    Ok(u.role().map(|r| ContextRole {
        role: r.as_str().to_owned(),
        staff: matches!(r, Role::Admin | Role::Moderator),
        suspended: u.is_suspended(),
    }))
}

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
        ],
        projectors: projections::marketplace::projectors(),
        replayers: vec![("marketplace.user", replay_states::<User>), ("marketplace.project", replay_states::<Project>)],
        upcasters: |_| {},
        role_of: Some(|state, account| Box::pin(role_of(state, account))),
        routes: None,
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
        project_command!("accept-match", "the project's client", project::AcceptMatch, AcceptMatch),
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
