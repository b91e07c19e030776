//! TLS for HTTPS and WSS: one rustls configuration (with *ring*) whose certificate checks are
//! the device's own, through rustls-platform-verifier: the Security framework on iOS and
//! macOS, Android's trust manager, the system's CA bundle on Linux (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when set). A corporate CA or a user-installed root is trusted wherever the
//! device trusts it. This module also owns the sentence an app shows when a server's
//! certificate is refused.
//!
//! <https://github.com/rustls/rustls-platform-verifier>

use std::error::Error as StdError;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::{Result, SdkError};

/// The configuration every HTTPS request and WSS connection of one client uses. The device's
/// roots are read here (on Linux, once per client), not at each connection.
pub(crate) fn client_config() -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = DeviceVerifier::new(provider.clone());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| SdkError::network(format!("cannot set up TLS: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The platform's verifier, or why there is none. A device where it cannot work (Android
/// before `AndroidTls.init`, a Linux machine without a CA bundle) still gets a client: plain
/// `http://` works, and every certificate is refused with that reason instead of a panic deep
/// in a connection task.
#[derive(Debug)]
struct DeviceVerifier {
    platform: std::result::Result<rustls_platform_verifier::Verifier, String>,
    /// Checks handshake signatures when there is no platform verifier to ask.
    provider: Arc<CryptoProvider>,
}

impl DeviceVerifier {
    fn new(provider: Arc<CryptoProvider>) -> DeviceVerifier {
        let platform = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|err| {
            tracing::warn!(%err, "the device's certificate store cannot be used");
            format!("the device's trusted certificates could not be loaded ({err})")
        });
        DeviceVerifier { platform, provider }
    }

    fn platform(&self) -> std::result::Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        if !platform_ready() {
            return Err(rustls::Error::General(NOT_INITIALISED.into()));
        }
        self.platform
            .as_ref()
            .map_err(|reason| rustls::Error::General(reason.clone()))
    }
}

impl ServerCertVerifier for DeviceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.platform()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match &self.platform {
            Ok(platform) => platform.verify_tls12_signature(message, cert, dss),
            Err(_) => rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            ),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match &self.platform {
            Ok(platform) => platform.verify_tls13_signature(message, cert, dss),
            Err(_) => rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            ),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.platform {
            Ok(platform) => platform.supported_verify_schemes(),
            Err(_) => self
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

/// What an app sees on Android when it connects over TLS before handing the SDK its
/// `Context`.
const NOT_INITIALISED: &str = "certificates cannot be checked yet: the app must call \
     AndroidTls.init(context) once at start, before connecting (see the SDK's README, TLS)";

/// Whether the platform verifier may be asked: on Android only after `AndroidTls.init`
/// (asking it before would panic inside rustls-platform-verifier).
fn platform_ready() -> bool {
    #[cfg(target_os = "android")]
    {
        android::INITIALISED.load(std::sync::atomic::Ordering::Acquire)
    }
    #[cfg(not(target_os = "android"))]
    {
        true
    }
}

/// Why a connection failed, in words, when TLS refused it: the certificate's fault (not
/// trusted, expired, for another name) or the handshake's. `None` for any other failure.
pub(crate) fn refusal(err: &(dyn StdError + 'static)) -> Option<String> {
    let tls = find_tls_error(err)?;
    let why = match tls {
        rustls::Error::InvalidCertificate(problem) => match problem {
            CertificateError::UnknownIssuer => "the server's certificate is not trusted: it was \
                 issued by a certificate authority this device does not trust"
                .to_owned(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired (or the device's clock is wrong)".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (or the device's clock is wrong)"
                    .to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is for another name than the server's address".to_owned()
            }
            CertificateError::Revoked => "the server's certificate has been revoked".to_owned(),
            other => format!("the server's certificate is not trusted: {other:?}"),
        },
        // Our own refusals (an Android app that did not call init, no roots on Linux).
        rustls::Error::General(reason) => reason.clone(),
        other => format!("the TLS handshake failed ({other})"),
    };
    Some(why)
}

/// The rustls error somewhere in `err`'s chain. An `io::Error`'s `source()` skips the error
/// it wraps (and reqwest nests one in another), so an `io::Error` is followed into what it
/// wraps instead.
fn find_tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut link = Some(err);
    while let Some(current) = link {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        link = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    None
}

/// The JNI entry point through which an Android app hands the verifier its `Context`:
/// `dev.switchboard.sdk.AndroidTls.init(context)`, once, before the first connection.
#[cfg(target_os = "android")]
pub mod android {
    use std::sync::atomic::{AtomicBool, Ordering};

    use jni::EnvUnowned;
    use jni::errors::ThrowRuntimeExAndDefault;
    use jni::jni_mangle;
    use jni::objects::{JClass, JObject};

    /// Set once rustls-platform-verifier holds the JVM and the app's `Context`.
    pub(super) static INITIALISED: AtomicBool = AtomicBool::new(false);

    /// `Java_dev_switchboard_sdk_AndroidTls_init`; a failure is thrown to Kotlin as a
    /// `RuntimeException`.
    #[jni_mangle("dev.switchboard.sdk.AndroidTls")]
    pub fn init<'caller>(
        mut unowned_env: EnvUnowned<'caller>,
        _class: JClass<'caller>,
        context: JObject<'caller>,
    ) {
        unowned_env
            .with_env(|env| {
                rustls_platform_verifier::android::init_with_env(env, context)?;
                INITIALISED.store(true, Ordering::Release);
                Ok::<_, jni::errors::Error>(())
            })
            .resolve::<ThrowRuntimeExAndDefault>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_certificate_is_named_in_words() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let why = refusal(&io).expect("a TLS error");
        assert!(
            why.contains("certificate") && why.contains("not trusted"),
            "{why}"
        );
        // As reqwest hands it over: one io::Error inside another.
        let nested = std::io::Error::other(io);
        let why = refusal(&nested).expect("a TLS error");
        assert!(
            why.contains("certificate") && why.contains("not trusted"),
            "{why}"
        );

        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(refusal(&expired).unwrap().contains("expired"));
        let other_name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(refusal(&other_name).unwrap().contains("another name"));
    }

    #[test]
    fn a_failure_without_tls_is_left_alone() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(refusal(&refused), None);
    }

    #[test]
    fn a_verifier_without_its_platform_refuses_with_the_reason() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = DeviceVerifier {
            platform: Err("no roots here".into()),
            provider,
        };
        let err = verifier
            .verify_server_cert(
                &CertificateDer::from(vec![1, 2, 3]),
                &[],
                &ServerName::try_from("chat.example.com").unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        assert_eq!(refusal(&err).unwrap(), "no roots here");
        assert!(!verifier.supported_verify_schemes().is_empty());
    }

    #[test]
    fn the_configuration_builds_on_this_platform() {
        let config = client_config().unwrap();
        assert!(config.alpn_protocols.is_empty());
    }
}
