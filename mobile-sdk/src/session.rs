//! Sessions: signing in, keeping the access token fresh, and handing every new session to the
//! app's `SessionStore` (the keychain or keystore belongs to the app).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use graphql_client::GraphQLQuery;
use tokio::sync::watch;

use crate::error::{Result, SdkError};
use crate::models::{Agent, time};
use crate::ops;
use crate::transport::Transport;

/// A signed-in agent's tokens. Keep it in the keychain (iOS) or an encrypted store (Android)
/// and give it to `Client::restore` when the app starts again.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub access_token_expires_at: SystemTime,
    pub agent_id: String,
    pub email: String,
}

/// Where the app keeps the session. Called whenever the SDK gets new tokens (login and each
/// refresh, since refresh tokens work once) and when the session ends.
#[uniffi::export(callback_interface)]
pub trait SessionStore: Send + Sync {
    /// Store this session, replacing any previous one.
    fn save(&self, session: Session);
    /// The session ended (logout, or the server revoked it): forget it.
    fn clear(&self);
}

/// Refresh this long before the access token expires, so requests in flight don't race it.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

pub(crate) struct Auth {
    pub(crate) transport: Transport,
    store: Box<dyn SessionStore>,
    session: Mutex<Option<Session>>,
    /// Held while refreshing: refresh tokens work once, so only one refresh may run.
    refreshing: tokio::sync::Mutex<()>,
    /// Bumped on every sign-in and sign-out, for tasks waiting for a session.
    generation: watch::Sender<u64>,
}

impl Auth {
    pub(crate) fn new(transport: Transport, store: Box<dyn SessionStore>) -> Auth {
        Auth {
            transport,
            store,
            session: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            generation: watch::Sender::new(0),
        }
    }

    pub(crate) fn session(&self) -> Option<Session> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn set(&self, session: Option<Session>) {
        let previous = std::mem::replace(
            &mut *self.session.lock().unwrap_or_else(|e| e.into_inner()),
            session.clone(),
        );
        match session {
            Some(session) => self.store.save(session),
            // A logout and the server's close of the stream race to sign out: the keychain
            // is cleared once, by whichever comes first.
            None if previous.is_some() => self.store.clear(),
            None => {}
        }
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// The server ended the session (it closed the event stream saying so): forget it here.
    pub(crate) fn ended_by_server(&self) {
        tracing::info!("the server ended the session; signed out");
        self.set(None);
    }

    pub(crate) fn restore(&self, session: Session) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session);
        self.generation.send_modify(|generation| *generation += 1);
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> Result<(Session, Agent)> {
        let data = self
            .transport
            .execute::<ops::Login>(
                ops::login::Variables {
                    email: email.to_owned(),
                    password: password.to_owned(),
                },
                None,
            )
            .await?;
        let auth = data.login;
        let agent: Agent = auth.agent.into();
        tracing::info!(agent_id = %agent.id, "signed in");
        let session = Session {
            access_token: auth.access_token,
            refresh_token: auth.refresh_token,
            access_token_expires_at: time(&auth.access_token_expires_at),
            agent_id: agent.id.clone(),
            email: agent.email.clone(),
        };
        self.set(Some(session.clone()));
        Ok((session, agent))
    }

    /// Ends the session on the server (when reachable) and here.
    pub(crate) async fn logout(&self) -> Result<()> {
        let result = match self.access_token().await {
            Ok(token) => self
                .transport
                .execute::<ops::Logout>(ops::logout::Variables, Some(&token))
                .await
                .map(|_| ()),
            Err(err) => Err(err),
        };
        self.set(None);
        match result {
            // Already signed out on the server, or unreachable: signed out here all the same.
            Ok(()) | Err(SdkError::Unauthenticated { .. }) | Err(SdkError::Network { .. }) => {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// A valid access token, refreshed first when it is about to expire.
    pub(crate) async fn access_token(&self) -> Result<String> {
        let session = self
            .session()
            .ok_or_else(|| SdkError::unauthenticated("not signed in"))?;
        let expiring = session
            .access_token_expires_at
            .duration_since(SystemTime::now())
            .map(|left| left < REFRESH_MARGIN)
            .unwrap_or(true);
        if expiring {
            self.refresh(&session.access_token).await
        } else {
            Ok(session.access_token)
        }
    }

    /// Trades the refresh token for new tokens, unless another task already replaced `stale`.
    /// A refused refresh token ends the session.
    pub(crate) async fn refresh(&self, stale: &str) -> Result<String> {
        let _only_one = self.refreshing.lock().await;
        let session = self
            .session()
            .ok_or_else(|| SdkError::unauthenticated("not signed in"))?;
        if session.access_token != stale {
            return Ok(session.access_token);
        }
        let result = self
            .transport
            .execute::<ops::RefreshToken>(
                ops::refresh_token::Variables {
                    refresh_token: session.refresh_token.clone(),
                },
                None,
            )
            .await;
        match result {
            Ok(data) => {
                let auth = data.refresh_token;
                let session = Session {
                    access_token: auth.access_token,
                    refresh_token: auth.refresh_token,
                    access_token_expires_at: time(&auth.access_token_expires_at),
                    agent_id: auth.agent.id,
                    email: auth.agent.email,
                };
                let token = session.access_token.clone();
                self.set(Some(session));
                Ok(token)
            }
            Err(err @ SdkError::Unauthenticated { .. }) => {
                tracing::info!("the server refused the refresh token; signed out");
                self.set(None);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Runs an operation as the signed-in agent. A token the server calls expired is refreshed
    /// once and the operation sent again.
    pub(crate) async fn run<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData>
    where
        Q::Variables: Clone,
    {
        let token = self.access_token().await?;
        match self
            .transport
            .execute::<Q>(variables.clone(), Some(&token))
            .await
        {
            Err(SdkError::Unauthenticated { .. }) => {
                let token = self.refresh(&token).await?;
                self.transport.execute::<Q>(variables, Some(&token)).await
            }
            other => other,
        }
    }
}
