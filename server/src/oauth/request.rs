//! The token request of RFC 6749 §4.4.2 and its errors (§5.2), parsed from plain values: no
//! HTTP framework or database here, so every malformed shape is a unit test.

use base64::Engine;

/// The only grant this endpoint serves.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// Identifiers and secrets longer than this are not ours; refused before hashing.
pub const MAX_CREDENTIAL_LEN: usize = 512;

/// RFC 6749 §5.2 error codes this endpoint answers, plus throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: missing, repeated or malformed parameter, wrong content type, two auth methods.
    InvalidRequest,
    /// 401 with `WWW-Authenticate: Basic`: unknown client, wrong/expired/revoked secret, no or
    /// unsupported client authentication.
    InvalidClient,
    /// 400: a grant type other than `client_credentials`.
    UnsupportedGrantType,
    /// 429 with `Retry-After`: too many failed attempts for this client or from this address.
    TooManyAttempts,
    /// 413: the body is larger than the endpoint accepts.
    TooLarge,
    /// 500: the database failed; logged, answered generically.
    ServerError,
}

impl ErrorCode {
    /// The `error` value of the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::TooLarge => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            // RFC 6749 has no code for throttling; this one (§4.1.2.1) says "try later".
            ErrorCode::TooManyAttempts => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// `error_description`: printable ASCII without `"` or `\` (RFC 6749 §5.2).
    pub description: &'static str,
}

impl OAuthError {
    pub const fn new(code: ErrorCode, description: &'static str) -> Self {
        Self { code, description }
    }
}

/// The one answer for every client-authentication failure, whatever was wrong.
pub const BAD_CLIENT: OAuthError = OAuthError::new(
    ErrorCode::InvalidClient,
    "Client authentication failed. Check the client identifier and client secret.",
);

/// The client's claimed identity, never logged (the secret is in it).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1). `None` when the
/// header uses another scheme; `Some(Err)` when it is Basic but malformed.
fn basic_credentials(authorization: &str) -> Option<Result<ClientCredentials, OAuthError>> {
    let (scheme, rest) = authorization
        .trim()
        .split_once(' ')
        .unwrap_or((authorization.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some(decoded) = decoded else {
        return Some(Err(BAD_CLIENT));
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return Some(Err(BAD_CLIENT));
    };
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .ok()
    };
    match (unescape(id), unescape(secret)) {
        (Some(client_id), Some(client_secret)) => Some(Ok(ClientCredentials {
            client_id,
            client_secret,
        })),
        _ => Some(Err(BAD_CLIENT)),
    }
}

/// Reads a token request. The checks run in a fixed order: content type, body parameters
/// (none repeated), one client authentication method, grant type, then the presence of
/// credentials. Whether the credentials are right is the caller's business.
pub fn parse_token_request(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<ClientCredentials, OAuthError> {
    if !is_form(content_type) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "The token request must be a POST with Content-Type application/x-www-form-urlencoded.",
        ));
    }
    let mut grant_type = None;
    let mut client_id = None;
    let mut client_secret = None;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in form_urlencoded::parse(body) {
        if !seen.insert(key.clone()) {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "A parameter appears more than once in the request.",
            ));
        }
        // §3.1: a parameter without a value is treated as omitted.
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "grant_type" => grant_type = Some(value.into_owned()),
            "client_id" => client_id = Some(value.into_owned()),
            "client_secret" => client_secret = Some(value.into_owned()),
            _ => {}
        }
    }
    let basic = authorization.and_then(basic_credentials);
    if basic.is_some() && client_secret.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "Use one client authentication method: HTTP Basic or client_id and client_secret in the body, not both.",
        ));
    }
    match grant_type.as_deref() {
        None => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "The grant_type parameter is missing; send grant_type=client_credentials.",
            ));
        }
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "Only grant_type=client_credentials is supported.",
            ));
        }
    }
    let creds = match basic {
        Some(basic) => {
            let creds = basic?;
            if client_id.is_some_and(|id| id != creds.client_id) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "The client_id in the body differs from the one in the Authorization header.",
                ));
            }
            creds
        }
        // Any other Authorization scheme is an unsupported authentication method.
        None if authorization.is_some() => return Err(BAD_CLIENT),
        None => match (client_id, client_secret) {
            (Some(client_id), Some(client_secret)) => ClientCredentials {
                client_id,
                client_secret,
            },
            _ => return Err(BAD_CLIENT),
        },
    };
    if creds.client_id.len() > MAX_CREDENTIAL_LEN || creds.client_secret.len() > MAX_CREDENTIAL_LEN
    {
        return Err(BAD_CLIENT);
    }
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    fn code(r: Result<ClientCredentials, OAuthError>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn body_credentials_are_read() {
        let c = parse_token_request(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            None,
            b"grant_type=client_credentials&client_id=abc&client_secret=s%2B3&scope=x",
        )
        .unwrap();
        assert_eq!(c.client_id, "abc");
        assert_eq!(c.client_secret, "s+3");
    }

    #[test]
    fn basic_credentials_are_read_and_unescaped() {
        let c = parse_token_request(
            FORM,
            Some(&basic("a%3Ab", "s+c%25")),
            b"grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!(c.client_id, "a:b");
        assert_eq!(c.client_secret, "s c%");
        // The same client_id in the body is allowed, another one is not.
        assert!(
            parse_token_request(
                FORM,
                Some(&basic("abc", "s")),
                b"grant_type=client_credentials&client_id=abc"
            )
            .is_ok()
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                Some(&basic("abc", "s")),
                b"grant_type=client_credentials&client_id=xyz"
            )),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn two_authentication_methods_are_an_invalid_request() {
        let r = parse_token_request(
            FORM,
            Some(&basic("abc", "s")),
            b"grant_type=client_credentials&client_id=abc&client_secret=s",
        );
        assert_eq!(code(r), ErrorCode::InvalidRequest);
    }

    #[test]
    fn content_type_must_be_a_form() {
        for ct in [
            None,
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data"),
        ] {
            let r = parse_token_request(ct, None, b"grant_type=client_credentials");
            assert_eq!(code(r), ErrorCode::InvalidRequest, "{ct:?}");
        }
    }

    #[test]
    fn grant_type_is_required_and_must_be_client_credentials() {
        let r = parse_token_request(FORM, None, b"client_id=a&client_secret=b");
        assert_eq!(code(r), ErrorCode::InvalidRequest);
        let r = parse_token_request(FORM, None, b"grant_type=&client_id=a&client_secret=b");
        assert_eq!(code(r), ErrorCode::InvalidRequest);
        for g in [
            "password",
            "authorization_code",
            "CLIENT_CREDENTIALS",
            "refresh_token",
        ] {
            let body = format!("grant_type={g}&client_id=a&client_secret=b");
            let r = parse_token_request(FORM, None, body.as_bytes());
            assert_eq!(code(r), ErrorCode::UnsupportedGrantType, "{g}");
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        for body in [
            "grant_type=client_credentials&grant_type=client_credentials&client_id=a&client_secret=b",
            "grant_type=client_credentials&client_id=a&client_id=a&client_secret=b",
            "grant_type=client_credentials&client_id=a&client_secret=b&client_secret=c",
        ] {
            let r = parse_token_request(FORM, None, body.as_bytes());
            assert_eq!(code(r), ErrorCode::InvalidRequest, "{body}");
        }
    }

    #[test]
    fn missing_or_unsupported_client_authentication_is_invalid_client() {
        for (auth, body) in [
            (None, "grant_type=client_credentials"),
            (None, "grant_type=client_credentials&client_id=a"),
            (None, "grant_type=client_credentials&client_secret=b"),
            (Some("Bearer abc"), "grant_type=client_credentials"),
            (Some("Basic !!!not-base64"), "grant_type=client_credentials"),
            (Some("Basic bm9jb2xvbg=="), "grant_type=client_credentials"), // "nocolon"
            (Some("Basic"), "grant_type=client_credentials"),
        ] {
            let r = parse_token_request(FORM, auth, body.as_bytes());
            assert_eq!(code(r), ErrorCode::InvalidClient, "{auth:?} {body}");
        }
        let long = "x".repeat(MAX_CREDENTIAL_LEN + 1);
        let body = format!("grant_type=client_credentials&client_id=a&client_secret={long}");
        assert_eq!(
            code(parse_token_request(FORM, None, body.as_bytes())),
            ErrorCode::InvalidClient
        );
    }

    #[test]
    fn garbage_bodies_never_panic() {
        for body in [
            &b"\xff\xfe\x00"[..],
            b"%%%%&&&===",
            b"grant_type=client_credentials&%zz=1",
            b"",
        ] {
            assert!(parse_token_request(FORM, None, body).is_err());
        }
    }

    #[test]
    fn error_codes_are_the_rfc_names() {
        let names: Vec<&str> = [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidClient,
            ErrorCode::UnsupportedGrantType,
            ErrorCode::TooManyAttempts,
            ErrorCode::TooLarge,
            ErrorCode::ServerError,
        ]
        .iter()
        .map(|c| c.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "invalid_request",
                "invalid_client",
                "unsupported_grant_type",
                "temporarily_unavailable",
                "invalid_request",
                "server_error"
            ]
        );
        // Every description is checked for plain ASCII in the integration tests, per answer.
        assert!(BAD_CLIENT.description.is_ascii());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let c = ClientCredentials {
            client_id: "id".into(),
            client_secret: "very-secret".into(),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
