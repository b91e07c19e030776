//! GraphQL over HTTP: one request, its answer, and the error an app can act on.

use std::sync::Arc;
use std::time::Duration;

use graphql_client::{GraphQLQuery, Response};

use crate::error::{Result, SdkError};
use crate::tls;

/// The server's GraphQL endpoint and an HTTP client for it.
#[derive(Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    graphql_url: reqwest::Url,
    /// The TLS configuration `http` was built with, for the WebSockets to the same server.
    tls: Arc<rustls::ClientConfig>,
}

impl Transport {
    pub(crate) fn new(server_url: &str) -> Result<Transport> {
        let graphql_url = graphql_url(server_url)?;
        let tls = tls::client_config()?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("switchboard-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SdkError::network)?;
        Ok(Transport {
            http,
            graphql_url,
            tls,
        })
    }

    /// The connector the WebSockets to this server use: the same trust as HTTP's.
    pub(crate) fn websocket_connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.tls.clone())
    }

    /// The WebSocket address of the same endpoint.
    pub(crate) fn websocket_url(&self) -> String {
        let mut url = self.graphql_url.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http(s) to ws(s) always succeeds for these special schemes.
        let _ = url.set_scheme(scheme);
        url.to_string()
    }

    /// Runs one operation, with the access token when there is one.
    pub(crate) async fn execute<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        token: Option<&str>,
    ) -> Result<Q::ResponseData> {
        let body = crate::ops::request_body::<Q>(variables);
        let mut request = self.http.post(self.graphql_url.clone()).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(request_failed)?;
        let status = response.status();
        refuse_status(&response)?;
        let text = response.text().await.map_err(request_failed)?;
        let response: Response<Q::ResponseData> = serde_json::from_str(&text).map_err(|err| {
            SdkError::server(format!(
                "the server's answer ({status}) is not GraphQL: {err}"
            ))
        })?;
        if let Some(error) = response.errors.as_ref().and_then(|errors| errors.first()) {
            return Err(graphql_error(error));
        }
        response
            .data
            .ok_or_else(|| SdkError::server("the server answered without data or errors"))
    }
}

impl Transport {
    /// A link the server gave relative to itself (`/files/…`), made whole.
    pub(crate) fn absolute_url(&self, relative: &str) -> Result<String> {
        self.graphql_url
            .join(relative)
            .map(String::from)
            .map_err(|err| SdkError::bad_input(format!("{relative:?} is not a link: {err}")))
    }

    /// Uploads a file into a chat (`POST /files`), as the holder of `token`; the server's
    /// JSON description of the stored file.
    pub(crate) async fn upload_file(
        &self,
        token: &str,
        chat_id: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<serde_json::Value> {
        let mut url = self.graphql_url.join("/files").map_err(SdkError::network)?;
        url.query_pairs_mut()
            .append_pair("chatId", chat_id)
            .append_pair("name", name);
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes)
            .send()
            .await
            .map_err(request_failed)?;
        let status = response.status();
        refuse_status(&response)?;
        let body: serde_json::Value = response.json().await.map_err(|err| {
            SdkError::server(format!(
                "the server's answer to an upload ({status}) is not JSON: {err}"
            ))
        })?;
        if let Some(error) = body["errors"].get(0) {
            return Err(error_from_json(error));
        }
        Ok(body)
    }
}

/// A request that got no answer, as a network error; a certificate the device does not trust
/// is named as such, since retrying will not help and the app may say so.
fn request_failed(err: reqwest::Error) -> SdkError {
    match tls::refusal(&err) {
        Some(why) => {
            let host = err
                .url()
                .and_then(|url| url.host_str())
                .unwrap_or("the server");
            SdkError::network(format!("cannot connect securely to {host}: {why}"))
        }
        None => SdkError::network(err),
    }
}

/// An answer no GraphQL body should be read from: a 429 (with its `Retry-After`), or a 5xx
/// from a proxy in front of the server or a server restarting.
fn refuse_status(response: &reqwest::Response) -> Result<()> {
    let status = response.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok());
        return Err(SdkError::too_many_requests(retry_after));
    }
    if status.is_server_error() {
        return Err(SdkError::network(format!("the server answered {status}")));
    }
    Ok(())
}

/// The first GraphQL error as the SDK's error, by its `extensions.code`.
pub(crate) fn graphql_error(error: &graphql_client::Error) -> SdkError {
    let extension = |name: &str| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get(name))
    };
    SdkError::from_code(
        extension("code")
            .and_then(|code| code.as_str())
            .unwrap_or("INTERNAL"),
        error.message.clone(),
        extension("retryAfterSeconds").and_then(|secs| secs.as_u64()),
    )
}

/// A GraphQL-shaped error read as plain JSON (the file upload's answer).
fn error_from_json(error: &serde_json::Value) -> SdkError {
    SdkError::from_code(
        error["extensions"]["code"].as_str().unwrap_or("INTERNAL"),
        error["message"].as_str().unwrap_or_default().to_owned(),
        error["extensions"]["retryAfterSeconds"].as_u64(),
    )
}

/// The server URL as given by the app ("https://chat.example.com", with or without
/// "/graphql") as the GraphQL endpoint.
fn graphql_url(server_url: &str) -> Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(server_url.trim())
        .map_err(|err| SdkError::bad_input(format!("{server_url:?} is not a server URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SdkError::bad_input(format!(
            "{server_url:?} is not an http or https URL"
        )));
    }
    if !url.path().trim_end_matches('/').ends_with("/graphql") {
        let path = format!("{}/graphql", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_the_graphql_endpoint() {
        let cases = [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/graphql"),
            (
                "https://chat.example.com/",
                "https://chat.example.com/graphql",
            ),
            (
                "https://chat.example.com/graphql",
                "https://chat.example.com/graphql",
            ),
            (
                "https://example.com/support/",
                "https://example.com/support/graphql",
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(graphql_url(given).unwrap().as_str(), expected);
        }
        let transport = Transport::new("https://chat.example.com").unwrap();
        assert_eq!(transport.websocket_url(), "wss://chat.example.com/graphql");
    }

    #[test]
    fn graphql_errors_become_the_variant_of_their_code() {
        let error: graphql_client::Error = serde_json::from_value(serde_json::json!({
            "message": "too many failed attempts; try again in 840 seconds",
            "extensions": {"code": "RATE_LIMITED", "retryAfterSeconds": 840}
        }))
        .unwrap();
        assert_eq!(
            graphql_error(&error),
            SdkError::RateLimited {
                retry_after_secs: 840,
                msg: "too many failed attempts; try again in 840 seconds".into()
            }
        );
        let upload = serde_json::json!({
            "message": "files of this type are not accepted",
            "extensions": {"code": "FILE_TYPE_NOT_ALLOWED"}
        });
        assert!(matches!(
            error_from_json(&upload),
            SdkError::FileTypeNotAllowed { .. }
        ));
        let without_code: graphql_client::Error =
            serde_json::from_value(serde_json::json!({"message": "boom"})).unwrap();
        assert_eq!(
            graphql_error(&without_code),
            SdkError::Server { msg: "boom".into() }
        );
    }

    #[test]
    fn bad_server_urls_are_refused() {
        for bad in ["", "chat.example.com", "ftp://example.com"] {
            let err = graphql_url(bad).unwrap_err();
            assert!(
                matches!(&err, SdkError::BadInput { .. }),
                "{bad:?}: {err:?}"
            );
        }
    }
}
