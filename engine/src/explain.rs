//! Library errors in words an operator can act on. What rustls and the OS
//! say ("received fatal alert: BadCertificate", "Connection reset by peer
//! (os error 104)") is turned into what happened before it reaches an
//! event, a refusal or the window; the raw text stays in the log.

/// A failed TLS handshake, as a sentence that starts "TLS handshake failed".
pub fn tls_failure(raw: &str) -> String {
    let has = |words: &[&str]| words.iter().any(|w| raw.contains(w));
    let why = if has(&[
        "BadCertificate",
        "UnknownCA",
        "CertificateUnknown",
        "DecryptError",
    ]) {
        "the other side refused this panel's certificate: an agent pinned to another panel's \
         fingerprint, or to this panel's from before its identity was made again"
    } else if has(&["InvalidContentType", "corrupt message", "InvalidMessage"]) {
        "the other side does not speak TLS (a plain-TCP agent, or another program)"
    } else if has(&[
        "peer is incompatible",
        "ProtocolVersion",
        "HandshakeFailure",
        "NoCipherSuitesInCommon",
        "InsufficientSecurity",
    ]) {
        "the other side offers no TLS version or cipher this panel takes (TLS 1.2 or 1.3 with \
         AES-GCM or ChaCha20-Poly1305)"
    } else {
        return format!("TLS handshake failed: {}", io_failure(raw));
    };
    format!("TLS handshake failed: {why}")
}

/// A lost or failed connection, in words; otherwise the text without its
/// error codes and links.
pub fn io_failure(raw: &str) -> String {
    let has = |words: &[&str]| words.iter().any(|w| raw.contains(w));
    if has(&["os error 104", "reset by peer"]) {
        return "the other side reset the connection".into();
    }
    if has(&["os error 32", "Broken pipe"]) {
        return "the other side closed the connection while the panel was sending".into();
    }
    if has(&["os error 110", "timed out"]) {
        return "the connection timed out".into();
    }
    if has(&[
        "unexpected end of file",
        "UnexpectedEof",
        "peer closed connection",
    ]) {
        return "the other side closed the connection without a word".into();
    }
    if has(&[
        "os error 113",
        "No route to host",
        "os error 101",
        "Network is unreachable",
    ]) {
        return "the network to the other side is down".into();
    }
    plain(raw)
}

/// `raw` without links (and the "see" before one), "(os error N)" and
/// doubled spaces.
pub fn plain(raw: &str) -> String {
    // Parenthesised asides that hold a link or an error code go whole.
    let mut text = String::new();
    let mut rest = raw;
    while let Some(open) = rest.find('(') {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        let aside = &rest[open..=open + len];
        text.push_str(&rest[..open]);
        if !(aside.contains("://") || aside.contains("os error")) {
            text.push_str(aside);
        }
        rest = &rest[open + len + 1..];
    }
    text.push_str(rest);
    let mut words: Vec<&str> = Vec::new();
    for w in text.split_whitespace() {
        if w.contains("://") {
            if words.last().is_some_and(|p| p.trim_matches(':') == "see") {
                words.pop();
            }
            continue;
        }
        words.push(w);
    }
    words
        .join(" ")
        .trim_end_matches([' ', ':', ';', ','])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_become_what_happened() {
        assert!(
            tls_failure("received fatal alert: BadCertificate")
                .contains("refused this panel's certificate")
        );
        assert!(
            tls_failure("received corrupt message of type InvalidContentType")
                .contains("does not speak TLS")
        );
        assert!(tls_failure("peer is incompatible: Tls12NotOffered").contains("no TLS version"));
        assert_eq!(
            tls_failure("Connection reset by peer (os error 104)"),
            "TLS handshake failed: the other side reset the connection"
        );
    }

    #[test]
    fn links_and_codes_are_left_out() {
        assert_eq!(
            plain("invalid peer certificate: Expired (see https://example.org/x) (os error 5)"),
            "invalid peer certificate: Expired"
        );
        assert_eq!(
            plain("bad thing (os error 5) happened"),
            "bad thing happened"
        );
        assert_eq!(plain("see <https://rustls.dev/x>: done"), "done");
        assert_eq!(plain("kept (as it is)"), "kept (as it is)");
    }
}
