//! Signing in and staying signed in: Argon2id passwords, short-lived access JWTs, and rotating
//! refresh tokens whose reuse signs the whole session out (a copy was stolen).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::bus::{BusEvent, EventBus, Topic};
use crate::domain::{self, Agent, Organization, Role, RoutingStatus};
use crate::error::{Error, Result};
use crate::services::rate_limit::RateLimiter;
use crate::store::{Database, NewAgent, NewRefreshToken, RefreshOutcome};

/// The window in which failed logins are counted.
const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Sign-ups allowed per client address per hour.
const SIGNUPS_PER_ADDRESS_PER_HOUR: u32 = 10;
/// The message for every failed login: it must not tell which of email or password was wrong.
const BAD_CREDENTIALS: &str = "invalid email or password";
/// Why a token of an ended session, or an expired one, is refused: the SDK reads the same
/// words from the WebSocket's close reason, so they come from the shared protocol crate.
pub use switchboard_protocol::ws::{SESSION_ENDED, TOKEN_EXPIRED};

/// A signed-in agent, checked against the store for this request: the session is live and the
/// agent active, so role and organization are current, not what the token said.
#[derive(Debug, Clone)]
pub struct Principal {
    pub agent: Agent,
    pub session_id: String,
}

impl Principal {
    /// The organization everything this principal does is confined to.
    pub fn organization_id(&self) -> &str {
        &self.agent.organization_id
    }

    /// The principal's role.
    pub fn role(&self) -> Role {
        self.agent.role
    }

    /// Fails with FORBIDDEN unless the principal is an admin or owner.
    pub fn require_admin(&self, what: &str) -> Result<()> {
        if self.role().is_admin() {
            Ok(())
        } else {
            Err(Error::forbidden(what))
        }
    }
}

/// Tells a WebSocket's streams when their agent's access may have changed (a session ended,
/// a new role or groups): they then re-read the agent from the store
/// ([`AuthService::revalidate`]) and show only what the new rights allow. One signal per agent
/// and node is shared by all their connections, so an idle socket holds a receiver, not a copy
/// of the rights.
#[derive(Clone)]
pub struct LivePrincipal {
    pub access: tokio::sync::watch::Receiver<u64>,
}

impl LivePrincipal {
    /// Completes when the access may have changed; `false` when the connection is gone.
    pub async fn changed(&mut self) -> bool {
        self.access.changed().await.is_ok()
    }
}

/// A customer chatting through the widget, identified by a visitor token.
#[derive(Debug, Clone)]
pub struct CustomerPrincipal {
    pub customer_id: String,
    pub organization_id: String,
}

/// Whoever presented a valid token.
#[derive(Debug, Clone)]
pub enum Caller {
    Agent(Arc<Principal>),
    Customer(CustomerPrincipal),
}

/// How long a visitor token lasts; the widget starts a new visitor session after that.
const VISITOR_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a successful login, sign-up or refresh hands the app.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    /// Shown once; only its hash is stored.
    pub refresh_token: String,
    pub agent: Agent,
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The agent's id.
    sub: String,
    /// The agent's organization.
    org: String,
    /// The session (refresh-token family) this token belongs to.
    sid: String,
    /// What kind of principal: `agent` or `visitor`.
    kind: String,
    iat: i64,
    exp: i64,
}

/// Sign-up input, already trimmed by nobody: validated here.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub organization_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// Authentication use cases.
pub struct AuthService {
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    access_token_ttl: Duration,
    refresh_token_ttl: Duration,
    allow_signup: bool,
    failures_per_account: RateLimiter,
    failures_per_address: RateLimiter,
    signups_per_address: RateLimiter,
    /// A real hash checked when the email is unknown, so that both cases take the same time.
    decoy_hash: OnceCell<String>,
}

/// The rate-limit keys a password check was counted under.
struct PasswordAttempt {
    account_key: String,
    address_key: String,
}

/// How the auth service is set up.
pub struct AuthSettings {
    pub jwt_secret: Vec<u8>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub allow_signup: bool,
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
}

impl AuthService {
    /// An auth service over `store`.
    pub fn new(store: Arc<dyn Database>, bus: Arc<dyn EventBus>, settings: AuthSettings) -> Self {
        let failures_per_account = RateLimiter::for_store(
            &store,
            "login_account",
            settings.login_failures_per_account,
            LOGIN_FAILURE_WINDOW,
        );
        let failures_per_address = RateLimiter::for_store(
            &store,
            "login_address",
            settings.login_failures_per_address,
            LOGIN_FAILURE_WINDOW,
        );
        let signups_per_address = RateLimiter::for_store(
            &store,
            "signup_address",
            SIGNUPS_PER_ADDRESS_PER_HOUR,
            Duration::from_secs(3600),
        );
        AuthService {
            store,
            bus,
            encoding_key: EncodingKey::from_secret(&settings.jwt_secret),
            decoding_key: DecodingKey::from_secret(&settings.jwt_secret),
            access_token_ttl: settings.access_token_ttl,
            refresh_token_ttl: settings.refresh_token_ttl,
            allow_signup: settings.allow_signup,
            failures_per_account,
            failures_per_address,
            signups_per_address,
            decoy_hash: OnceCell::new(),
        }
    }

    /// Signs an agent in with email and password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        organization_id: Option<&str>,
        client: IpAddr,
    ) -> Result<AuthSession> {
        let email = domain::normalize_email(email)?;
        let attempt = self.password_attempt(&email, client).await.inspect_err(
            |_| tracing::warn!(%client, reason = "too many failed attempts", "failed login"),
        )?;

        // Emails are unique per organization: a person may have accounts in several.
        let candidates: Vec<_> = self
            .store
            .agent_credentials(&email)
            .await?
            .into_iter()
            .filter(|(agent, _)| organization_id.is_none_or(|id| agent.organization_id == id))
            .collect();
        // Why the login failed, for the log only: the client is told nothing more than
        // BAD_CREDENTIALS.
        let mut reason = "unknown email";
        if candidates.is_empty() {
            // The same work as for a known email, so timing tells nothing.
            verify_password(self.decoy_hash().await?, password.to_owned()).await?;
        }
        let mut signed_in = None;
        for (agent, hash) in candidates {
            if !verify_password(hash, password.to_owned()).await? {
                reason = "wrong password";
            } else if !agent.active {
                reason = "account deactivated";
            } else {
                signed_in = Some(agent);
                break;
            }
        }
        let Some(agent) = signed_in else {
            tracing::warn!(%client, reason, "failed login");
            return Err(Error::Unauthenticated(BAD_CREDENTIALS.into()));
        };
        self.failures_per_account.clear(&attempt.account_key).await;
        self.failures_per_address.refund(&attempt.address_key).await;

        let status =
            RoutingStatus::after_login(agent.routing_status, agent.last_login_at.is_none());
        let now = domain::now();
        let agent = self.store.record_login(&agent.id, status, now).await?;
        let session = self.start_session(agent).await?;
        // Signing in is a sign of life: the app connects its event stream next.
        let grace = self
            .store
            .organization(&session.agent.organization_id)
            .await?
            .settings
            .presence_grace;
        self.store
            .set_presence(std::slice::from_ref(&session.agent.id), now + grace, false)
            .await?;
        self.bus.publish(
            Topic::Agent(session.agent.id.clone()),
            BusEvent::AgentChanged {
                organization_id: session.agent.organization_id.clone(),
                agent_id: session.agent.id.clone(),
            },
        );
        Ok(session)
    }

    /// Counts a password check for the account and the client address before it is made, so
    /// guesses sent together are counted together: a burst gets `limit` checks, not one per
    /// request. A check that succeeds may refund its attempt.
    async fn password_attempt(&self, email: &str, client: IpAddr) -> Result<PasswordAttempt> {
        let attempt = PasswordAttempt {
            account_key: format!("account:{email}"),
            address_key: format!("address:{client}"),
        };
        self.failures_per_account
            .acquire(&attempt.account_key)
            .await
            .map_err(too_many_attempts)?;
        if let Err(wait) = self
            .failures_per_address
            .acquire(&attempt.address_key)
            .await
        {
            self.failures_per_account.refund(&attempt.account_key).await;
            return Err(too_many_attempts(wait));
        }
        Ok(attempt)
    }

    /// Creates an organization and its owner, and signs the owner in.
    pub async fn sign_up(&self, input: SignUp, client: IpAddr) -> Result<AuthSession> {
        if !self.allow_signup {
            return Err(Error::Forbidden(
                "sign-up is disabled on this server".into(),
            ));
        }
        let address_key = client.to_string();
        self.signups_per_address
            .acquire(&address_key)
            .await
            .map_err(too_many_attempts)?;
        let (organization, owner) = new_organization(
            &input.organization_name,
            &input.name,
            &input.email,
            &input.password,
        )
        .await?;
        let owner = self
            .store
            .create_organization(&organization, &owner)
            .await?;
        let owner = self
            .store
            .record_login(&owner.id, RoutingStatus::AcceptingChats, domain::now())
            .await?;
        self.start_session(owner).await
    }

    /// Trades a refresh token for a new access token and a new refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<AuthSession> {
        let now = domain::now();
        let (next_token, next) = self.new_refresh_token(String::new(), now);
        match self
            .store
            .rotate_refresh_token(&token_hash(refresh_token), &next, now)
            .await?
        {
            RefreshOutcome::Rotated {
                agent_id,
                session_id,
            } => {
                let agent = self
                    .store
                    .session_agent(&session_id, &agent_id)
                    .await?
                    .ok_or_else(|| Error::Unauthenticated("the session has ended".into()))?;
                let (access_token, access_token_expires_at) =
                    self.access_token(&agent, &session_id, now)?;
                Ok(AuthSession {
                    access_token,
                    access_token_expires_at,
                    refresh_token: next_token,
                    agent,
                })
            }
            RefreshOutcome::Reused {
                agent_id,
                session_id,
            } => {
                tracing::warn!(
                    %agent_id,
                    %session_id,
                    reason = "refresh token reused",
                    "session revoked"
                );
                self.access_changed(&agent_id);
                Err(Error::Unauthenticated(
                    "this refresh token was already used, so the session has been signed out; \
                     sign in again"
                        .into(),
                ))
            }
            RefreshOutcome::Invalid => Err(Error::Unauthenticated(
                "the refresh token is invalid or expired".into(),
            )),
        }
    }

    /// Ends the principal's session: its refresh token and access tokens stop working and its
    /// WebSockets close. Signing out of the last app (no other session, no push device) makes
    /// the agent unreachable at once, so no chat is routed to them in the grace period.
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        let agent = &principal.agent;
        self.store
            .sign_out_session(&principal.session_id, &agent.id, domain::now())
            .await?;
        self.access_changed(&agent.id);
        self.bus.publish(
            Topic::Agent(agent.id.clone()),
            BusEvent::AgentChanged {
                organization_id: agent.organization_id.clone(),
                agent_id: agent.id.clone(),
            },
        );
        Ok(())
    }

    /// Changes the principal's password after checking the current one, and ends every other
    /// session of theirs (a stolen session does not outlive the new password). Wrong current
    /// passwords count like failed logins.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: &str,
        new_password: &str,
        client: IpAddr,
    ) -> Result<()> {
        domain::validate_password(new_password)?;
        let attempt = self
            .password_attempt(&principal.agent.email, client)
            .await?;
        let (_, hash) = self
            .store
            .agent_credentials(&principal.agent.email)
            .await?
            .into_iter()
            .find(|(agent, _)| agent.id == principal.agent.id)
            .ok_or_else(|| Error::Unauthenticated("the account no longer exists".into()))?;
        if !verify_password(hash, current_password.to_owned()).await? {
            tracing::warn!(agent = %principal.agent.id, %client, "wrong current password");
            return Err(Error::BadUserInput("the current password is wrong".into()));
        }
        self.failures_per_account.refund(&attempt.account_key).await;
        self.failures_per_address.refund(&attempt.address_key).await;
        let hash = hash_password(new_password.to_owned()).await?;
        self.store
            .change_password(
                &principal.agent.id,
                &hash,
                &principal.session_id,
                domain::now(),
            )
            .await?;
        tracing::warn!(
            agent = %principal.agent.id,
            %client,
            reason = "password changed",
            "the agent's other sessions revoked"
        );
        self.access_changed(&principal.agent.id);
        Ok(())
    }

    /// The principal as the store has it now: the session must still be live and the agent
    /// active; role and groups are current. WebSockets call it for every operation and when
    /// they hear that the agent's access changed.
    pub async fn revalidate(&self, principal: &Principal) -> Result<Arc<Principal>> {
        let agent = self
            .store
            .session_agent(&principal.session_id, &principal.agent.id)
            .await?
            .ok_or_else(|| Error::Unauthenticated(SESSION_ENDED.into()))?;
        Ok(Arc::new(Principal {
            agent,
            session_id: principal.session_id.clone(),
        }))
    }

    /// Tells every node's connections of the agent to re-check their session and rights. The
    /// change is committed first; nodes that miss this find it by polling the store.
    pub fn access_changed(&self, agent_id: &str) {
        self.bus.publish(
            Topic::Access,
            BusEvent::AccessChanged {
                agent_id: agent_id.to_owned(),
            },
        );
    }

    /// Checks an access token: an agent's (and the session behind it) or a visitor's.
    pub async fn authenticate(&self, access_token: &str) -> Result<Caller> {
        Ok(self.authenticate_until(access_token).await?.0)
    }

    /// [`AuthService::authenticate`], with when the token expires: a WebSocket closes then.
    pub async fn authenticate_until(&self, access_token: &str) -> Result<(Caller, DateTime<Utc>)> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(access_token, &self.decoding_key, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::Unauthenticated(TOKEN_EXPIRED.into())
                }
                _ => Error::Unauthenticated("the access token is invalid".into()),
            })?
            .claims;
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
        let caller = match claims.kind.as_str() {
            "agent" => {
                let agent = self
                    .store
                    .session_agent(&claims.sid, &claims.sub)
                    .await?
                    .ok_or_else(|| Error::Unauthenticated(SESSION_ENDED.into()))?;
                Caller::Agent(Arc::new(Principal {
                    agent,
                    session_id: claims.sid,
                }))
            }
            "visitor" => Caller::Customer(CustomerPrincipal {
                customer_id: claims.sub,
                organization_id: claims.org,
            }),
            _ => return Err(Error::Unauthenticated("the access token is invalid".into())),
        };
        Ok((caller, expires_at))
    }

    /// A token for a website visitor: it lets them chat as `customer`, nothing more. The widget
    /// gets a new one by starting a new visitor session.
    pub fn visitor_token(&self, customer: &domain::Customer) -> Result<(String, DateTime<Utc>)> {
        let now = domain::now();
        self.sign(
            &customer.id,
            &customer.organization_id,
            "",
            "visitor",
            now,
            VISITOR_TOKEN_TTL,
        )
    }

    async fn start_session(&self, agent: Agent) -> Result<AuthSession> {
        let now = domain::now();
        let session_id = domain::new_id();
        let (refresh_token, stored) = self.new_refresh_token(session_id.clone(), now);
        self.store
            .create_session(&session_id, &agent.id, &stored)
            .await?;
        let (access_token, access_token_expires_at) =
            self.access_token(&agent, &session_id, now)?;
        Ok(AuthSession {
            access_token,
            access_token_expires_at,
            refresh_token,
            agent,
        })
    }

    fn access_token(
        &self,
        agent: &Agent,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>)> {
        let ttl = self.access_token_ttl;
        self.sign(
            &agent.id,
            &agent.organization_id,
            session_id,
            "agent",
            now,
            ttl,
        )
    }

    /// A signed token of `kind` for `subject`, valid for `ttl` from `now`, with its expiry.
    fn sign(
        &self,
        subject: &str,
        organization_id: &str,
        session_id: &str,
        kind: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>)> {
        let expires_at = now + ttl;
        let claims = Claims {
            sub: subject.to_owned(),
            org: organization_id.to_owned(),
            sid: session_id.to_owned(),
            kind: kind.to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding_key)
                .map_err(Error::internal)?;
        Ok((token, expires_at))
    }

    fn new_refresh_token(
        &self,
        session_id: String,
        now: DateTime<Utc>,
    ) -> (String, NewRefreshToken) {
        let token = random_token(32);
        let stored = NewRefreshToken {
            token_hash: token_hash(&token),
            session_id,
            created_at: now,
            expires_at: now + self.refresh_token_ttl,
        };
        (token, stored)
    }

    async fn decoy_hash(&self) -> Result<String> {
        self.decoy_hash
            .get_or_try_init(|| hash_password(random_token(16)))
            .await
            .cloned()
    }
}

/// Builds a new organization and its owner from sign-up or bootstrap input, validating it all.
pub(crate) async fn new_organization(
    organization_name: &str,
    owner_name: &str,
    owner_email: &str,
    owner_password: &str,
) -> Result<(Organization, NewAgent)> {
    let organization_name = domain::validate_name("organizationName", organization_name, 100)?;
    let name = domain::validate_name("name", owner_name, 100)?;
    let email = domain::normalize_email(owner_email)?;
    domain::validate_password(owner_password)?;
    let now = domain::now();
    let organization = Organization {
        id: domain::new_id(),
        name: organization_name,
        widget_key: format!("wk_{}", random_token(18)),
        settings: domain::ChatSettings::default(),
        created_at: now,
    };
    let owner = NewAgent {
        id: domain::new_id(),
        organization_id: organization.id.clone(),
        email,
        name,
        password_hash: hash_password(owner_password.to_owned()).await?,
        role: Role::Owner,
        chat_limit: None,
        group_ids: Vec::new(),
        created_at: now,
    };
    Ok((organization, owner))
}

fn too_many_attempts(wait: Duration) -> Error {
    let retry_after_secs = wait.as_secs().max(1);
    Error::RateLimited {
        message: format!("too many failed attempts; try again in {retry_after_secs} seconds"),
        retry_after_secs,
    }
}

/// Runs password hashing on a few dedicated threads, one per core. Each Argon2id hash takes
/// 19 MiB and tens of milliseconds of CPU by design; on the general blocking pool a burst of
/// logins spread that over dozens of threads, each keeping its own allocator arena (1.8 GB
/// resident after 50 logins), and took every core.
fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    type Job = Box<dyn FnOnce() + Send>;
    static JOBS: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for n in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
            let receiver = receiver.clone();
            let _ = std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
        }
        std::sync::Mutex::new(sender)
    });
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    let _ = jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    result
}

/// Hashes a password with Argon2id (the library's default parameters) on the hashing threads,
/// as a PHC string.
pub async fn hash_password(password: String) -> Result<String> {
    on_hashing_thread(move || {
        let salt = SaltString::generate(&mut OsRng);
        let argon2 = Argon2::default();
        let params = argon2.params().clone();
        let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(internal)?;
        derive(&argon2, &params, &password, raw_salt, &mut output)?;
        let hash = PasswordHash {
            algorithm: argon2::Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(internal)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(internal)?),
        };
        Ok(hash.to_string())
    })
    .await
    .map_err(Error::internal)?
}

/// Checks a password against an Argon2 PHC string (whatever its parameters), on the hashing
/// threads.
async fn verify_password(hash: String, password: String) -> Result<bool> {
    on_hashing_thread(move || {
        let parsed = PasswordHash::new(&hash).map_err(internal)?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).map_err(internal)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(internal)?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(internal)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(Error::internal("a password hash without salt or hash"));
        };
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(internal)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let mut output = vec![0u8; expected.len()];
        derive(&argon2, &params, &password, raw_salt, &mut output)?;
        // Output compares in constant time.
        Ok(Output::new(&output).map_err(internal)? == expected)
    })
    .await
    .map_err(Error::internal)?
}

/// Runs `hash` with this hashing thread's Argon2 memory. Each thread allocates its blocks once
/// (19 MiB with the default parameters) and keeps them: allocating them per hash left hundreds
/// of megabytes in the allocator after a burst of logins (the connections benchmark started
/// from 360 MB resident instead of 21 MB).
/// Derives Argon2's output for `password` and `salt` into `output`, in the thread's memory.
fn derive(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: &[u8],
    output: &mut [u8],
) -> Result<()> {
    with_hashing_memory(params, |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, output, blocks)
    })
    .map_err(internal)
}

fn with_hashing_memory<T>(params: &Params, hash: impl FnOnce(&mut [Block]) -> T) -> T {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let needed = params.block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        hash(&mut blocks[..needed])
    })
}

fn internal(err: impl std::fmt::Display) -> Error {
    Error::internal(err.to_string())
}

/// `bytes` random bytes from the OS, URL-safe base64 encoded.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// How refresh tokens are stored: SHA-256, hex. They are random, so no salt or slow hash is
/// needed; a fast hash keeps the lookup a primary-key read.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password(hash.clone(), "correct horse".into())
                .await
                .unwrap()
        );
        assert!(!verify_password(hash, "wrong horse!".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours, checked by the argon2 crate's own verifier.
        let ours = hash_password("correct horse".into()).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // Hashes the crate made, with default and with other parameters, checked by ours.
        let salt = SaltString::generate(&mut OsRng);
        let other = Argon2::new(
            argon2::Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, Some(16)).unwrap(),
        );
        for argon2 in [Argon2::default(), other] {
            let theirs = argon2
                .hash_password(b"battery staple", &salt)
                .unwrap()
                .to_string();
            assert!(
                verify_password(theirs.clone(), "battery staple".into())
                    .await
                    .unwrap()
            );
            assert!(
                !verify_password(theirs, "battery stapler".into())
                    .await
                    .unwrap()
            );
        }
        assert!(
            verify_password("not a hash".into(), "x".into())
                .await
                .is_err()
        );
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_eq!(token_hash("abc").len(), 64);
    }
}
