//! The `identity` context: accounts, credentials and sessions (the basic part: register, log in,
//! log out; the first admin from the CLI). Email uniqueness is enforced on the write side by an
//! `email-{casefolded}` reservation stream appended with "no stream" next to the account.

use crate::app::AppState;
use crate::auth::{hash_password, hash_token, new_token, verify_password, Caller};
use crate::contexts::{map_exec, Kind};
use crate::error::ApiError;
use crate::registry::{command, replay_states, Auth, CommandReply, ContextModule};
use commands::store::{EventStore, ExpectedVersion, NewEvent, StreamWrite};
use commands::CommandContext;
use domain::identity::account::{self, Account, AccountAction, AccountCommand, AccountError, EmailReservationEvent};
use domain::identity::session::{self, CloseReason, Session, SessionAction, SessionCommand};
use domain::kernel::{encode_event, DomainEvent};
use domain::values::Email;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterAccount {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogIn {
    pub email: String,
    pub password: String,
    pub device_info: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogOut {}

fn account_kind(e: &AccountError) -> Kind {
    match e.kind() {
        account::ErrorKind::Forbidden => Kind::Forbidden,
        account::ErrorKind::NotFound => Kind::NotFound,
        account::ErrorKind::Conflict => Kind::Conflict,
        account::ErrorKind::Invalid => Kind::Invalid,
    }
}

fn session_kind(e: &domain::identity::session::SessionError) -> Kind {
    match e.kind() {
        account::ErrorKind::Forbidden => Kind::Forbidden,
        account::ErrorKind::NotFound => Kind::NotFound,
        account::ErrorKind::Conflict => Kind::Conflict,
        account::ErrorKind::Invalid => Kind::Invalid,
    }
}

/// argon2id is deliberately slow: keep it off the async workers.
async fn hash_off_thread(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(ApiError::internal)?
}

/// Registers an account, reserving its e-mail in the same transaction.
pub async fn register(
    state: &AppState,
    email: &str,
    password: &str,
    name: &str,
    ctx: CommandContext,
) -> Result<(Uuid, commands::CommandResult), ApiError> {
    let email = Email::parse(email).map_err(ApiError::Invalid)?;
    if password.chars().count() < 10 {
        return Err(ApiError::Invalid("password: at least 10 characters".into()));
    }
    let password_hash = hash_off_thread(password.to_owned()).await?;
    let account_id = Uuid::now_v7();
    let command = AccountCommand {
        at: ctx.at,
        action: AccountAction::Register { account_id, email: email.clone(), name: name.to_owned(), password_hash },
    };
    let metadata = ctx.metadata();
    let reservation: commands::pipeline::ExtraWrites<Account> = Box::new(move |_state, events| {
        let Some((stream, event)) = account::email_reservation(events) else { return Vec::new() };
        let (event_type, payload) = encode_event(&event).expect("reservation encodes");
        vec![StreamWrite {
            stream_id: stream,
            stream_type: account::EMAIL_RESERVATION_STREAM_TYPE.to_owned(),
            expected: ExpectedVersion::NoStream,
            events: vec![NewEvent {
                event_id: Uuid::now_v7(),
                schema_version: EmailReservationEvent::schema_version(&event_type),
                event_type,
                payload,
                metadata: metadata.clone(),
            }],
        }]
    });
    match state.bus.execute_with::<Account>(account::stream_id(account_id), command, ctx, Some(reservation)).await {
        Ok(result) => Ok((account_id, result)),
        Err(commands::ExecuteError::Conflict { stream_id, .. }) if stream_id.starts_with("email-") => {
            Err(ApiError::Conflict(format!("{} is already registered", email.as_str())))
        }
        Err(e) => Err(map_exec(e, account_kind)),
    }
}

/// The account an e-mail belongs to, from its reservation stream (the write side: no lag).
async fn account_of(state: &AppState, email: &Email) -> Result<Option<Uuid>, ApiError> {
    let events = state.store.read_stream(&account::email_reservation_stream(email), 0).await?;
    Ok(events.first().and_then(|e| e.payload["account_id"].as_str()).and_then(|s| Uuid::parse_str(s).ok()))
}

async fn log_in(state: AppState, caller: Caller, body: LogIn, ctx: CommandContext) -> Result<CommandReply, ApiError> {
    let refused = || ApiError::Unauthenticated("unknown e-mail or wrong password".into());
    let email = Email::parse(&body.email).map_err(|_| refused())?;
    let account_id = account_of(&state, &email).await?.ok_or_else(refused)?;
    let (acc, _) =
        state.bus.load::<Account>(&account::stream_id(account_id)).await.map_err(|e| map_exec(e, account_kind))?;
    let hash = acc.password_hash().ok_or_else(refused)?.to_owned();
    let password = body.password.clone();
    let ok =
        tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.map_err(ApiError::internal)?;
    if !ok {
        return Err(refused());
    }
    if acc.is_suspended() {
        return Err(ApiError::Forbidden("this account is suspended".into()));
    }
    let token = new_token();
    let session_id = Uuid::now_v7();
    let expires_at = ctx.at + chrono::Duration::hours(state.config.session_hours);
    let ctx = CommandContext { actor_id: Some(account_id.to_string()), actor_role: Some("account".into()), ..ctx };
    let open = SessionCommand {
        at: ctx.at,
        action: SessionAction::Open {
            session_id,
            account_id,
            token_hash: hash_token(&token),
            expires_at,
            device_info: body.device_info.or(caller.user_agent.clone()),
        },
    };
    let result = state
        .bus
        .execute::<Session>(session::stream_id(&hash_token(&token)), open, ctx.clone())
        .await
        .map_err(|e| map_exec(e, session_kind))?;
    let mut login_ctx = ctx;
    login_ctx.idempotency = None;
    state
        .bus
        .execute::<Account>(
            account::stream_id(account_id),
            AccountCommand { at: login_ctx.at, action: AccountAction::RecordLogin { session_id } },
            login_ctx,
        )
        .await
        .map_err(|e| map_exec(e, account_kind))?;
    Ok(CommandReply::created(result)
        .with(json!({ "token": token, "sessionId": session_id, "accountId": account_id, "expiresAt": expires_at })))
}

async fn log_out(
    state: AppState,
    caller: Caller,
    _body: LogOut,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let account = caller.require()?;
    let stream = caller.session_stream.clone().expect("signed-in callers have a session");
    let ctx = CommandContext { actor_id: Some(account.to_string()), actor_role: Some("account".into()), ..ctx };
    let close = SessionCommand { at: ctx.at, action: SessionAction::Close { reason: CloseReason::LoggedOut } };
    let result = state.bus.execute::<Session>(&stream, close, ctx).await.map_err(|e| map_exec(e, session_kind))?;
    state.sessions.forget(&stream);
    Ok(CommandReply::ok(result))
}

/// The operator's first admin: an account with the admin grant and a marketplace admin profile.
pub async fn create_admin(state: &AppState, email: &str, password: &str, name: &str) -> Result<Uuid, ApiError> {
    let ctx = CommandContext::new("create-admin", state.clock.now()).with_actor("operator-cli", "system");
    let (account_id, _) = register(state, email, password, name, ctx.clone()).await?;
    state
        .bus
        .execute::<Account>(
            account::stream_id(account_id),
            AccountCommand { at: ctx.at, action: AccountAction::GrantAdmin { by: None } },
            ctx.clone(),
        )
        .await
        .map_err(|e| map_exec(e, account_kind))?;
    crate::contexts::marketplace::appoint(
        state,
        account_id,
        email,
        name,
        domain::marketplace::Role::Admin,
        ctx.clone(),
    )
    .await?;
    crate::contexts::lms::appoint_first_admin(state, account_id, email, name, ctx).await?;
    Ok(account_id)
}

pub fn module() -> ContextModule {
    ContextModule {
        name: "identity",
        commands: vec![
            command::<RegisterAccount, _, _>(
                "identity",
                "register-account",
                "anyone",
                Auth::Anonymous,
                |state, _caller, body, ctx| async move {
                    let (account_id, result) = register(&state, &body.email, &body.password, &body.name, ctx).await?;
                    Ok(CommandReply::created(result).with(json!({ "accountId": account_id })))
                },
            ),
            command::<LogIn, _, _>("identity", "log-in", "anyone with an account", Auth::Anonymous, log_in),
            command::<LogOut, _, _>("identity", "log-out", "the session's owner", Auth::SignedIn, log_out),
        ],
        tables: vec![],
        projectors: vec![],
        replayers: vec![("identity.account", replay_states::<Account>), ("identity.session", replay_states::<Session>)],
        upcasters: |_| {},
        role_of: None,
        routes: None,
        route_docs: &[],
    }
}
