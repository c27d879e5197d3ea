//! A pair's identity evidence spelled out for operators (`clusterd
//! explain`, the console's "why"): every shared value with its carriers,
//! its rarity and why it has that rarity. The scoring itself is
//! [`super::similarity`]; this only names what it saw.

use super::features::{for_each_common, Features};
use super::similarity::{score, HighSource, Rarity};
use serde::{Deserialize, Serialize};

/// A pair's score with the matching values spelled out, for operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairExplanation {
    pub a: String,
    pub b: String,
    pub total: f64,
    pub threshold: f64,
    pub edge: bool,
    pub high: f64,
    /// What gave the high tier its score, e.g. `ja3:771,4865…`,
    /// `payload:9f86…`, `key:login:SHA256:…` or `credential:root:…`.
    pub high_signal: Option<String>,
    pub shared_tooling: Vec<SharedTool>,
    /// Shared SSH keys (login with login, planted with planted).
    #[serde(default)]
    pub shared_keys: Vec<SharedValue>,
    pub shared_payloads: Vec<String>,
    pub shared_c2: Vec<String>,
    pub vetoed: bool,
    /// × the rarity-weighted Jaccard of the command sets.
    pub medium: f64,
    pub shared_commands: Vec<String>,
    /// Each shared command with its carriers and rarity (stock ones at 0).
    #[serde(default)]
    pub command_rarity: Vec<SharedValue>,
    pub low: f64,
    pub shared_credentials: Vec<(String, String)>,
    /// Each shared credential pair (`user:password`) with its carriers and
    /// rarity.
    #[serde(default)]
    pub credential_rarity: Vec<SharedValue>,
    pub asn: f64,
    pub same_asn: Option<u32>,
    /// Operator decision on this pair, if any (`link` or `separate`).
    pub decision: Option<String>,
}

/// One shared tooling value with its rarity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedTool {
    pub kind: String,
    pub value: String,
    pub carriers: u32,
    pub rarity: f64,
    pub weight: f64,
    /// The catalogued client library it was measured from
    /// (`paramiko 3.5.1`): tooling however few carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
}

/// One shared key, credential or command with its rarity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedValue {
    /// `login`/`planted` for keys; `credential` or `command`.
    pub kind: String,
    pub value: String,
    pub carriers: u32,
    pub rarity: f64,
    /// Why the rarity is what it is: `catalogue`, `strength`, `count`.
    pub because: String,
}

/// Builds the explanation of a pair.
pub fn explain(
    (ua, a): (&str, &Features),
    (ub, b): (&str, &Features),
    r: &Rarity<'_>,
) -> PairExplanation {
    let (w, vocab) = (r.weights, r.vocab);
    let s = score(a, b, r);
    let count_or = |rarity: f64, carriers: u32, otherwise: &str| {
        if rarity < w.rarity(carriers) {
            otherwise.to_string()
        } else {
            "count".to_string()
        }
    };
    let mut shared_tooling = Vec::new();
    for_each_common(a.tools(), b.tools(), |id| {
        let (kind, value) = vocab.tool(id);
        let rarity = r.tool(id);
        shared_tooling.push(SharedTool {
            kind: kind.to_string(),
            value: value.to_string(),
            carriers: r.carriers.tool(id),
            rarity,
            weight: w.fingerprint * rarity,
            library: vocab.tool_library[id as usize]
                .as_deref()
                .map(str::to_string),
        });
    });
    let mut shared_keys = Vec::new();
    for_each_common(a.keys(), b.keys(), |id| {
        let (key_use, key) = vocab.key(id);
        shared_keys.push(SharedValue {
            kind: key_use.as_str().to_string(),
            value: key.to_string(),
            carriers: r.carriers.key(id),
            rarity: r.key(id),
            because: "count".into(),
        });
    });
    let mut shared_payloads = Vec::new();
    for_each_common(a.payloads(), b.payloads(), |id| {
        shared_payloads.push(vocab.payloads.name(id).to_string())
    });
    let mut shared_c2 = Vec::new();
    for_each_common(a.c2(), b.c2(), |id| {
        shared_c2.push(vocab.c2.name(id).to_string())
    });
    let mut shared_commands = Vec::new();
    let mut command_rarity = Vec::new();
    for_each_common(a.commands(), b.commands(), |id| {
        let name = vocab.commands.name(id).to_string();
        let (rarity, carriers) = (r.command(id), r.carriers.command(id));
        command_rarity.push(SharedValue {
            kind: "command".into(),
            value: name.clone(),
            carriers,
            rarity,
            because: count_or(rarity, carriers, "catalogue"),
        });
        shared_commands.push(name);
    });
    let mut shared_credentials = Vec::new();
    let mut credential_rarity = Vec::new();
    for_each_common(a.credentials(), b.credentials(), |id| {
        let (u, p) = vocab.credential(id);
        let (rarity, carriers) = (r.credential(id), r.carriers.credential(id));
        let because = if w.catalogue.stock_credential(u, p) {
            "catalogue".to_string()
        } else {
            count_or(rarity, carriers, "strength")
        };
        credential_rarity.push(SharedValue {
            kind: "credential".into(),
            value: format!("{u}:{p}"),
            carriers,
            rarity,
            because,
        });
        shared_credentials.push((u.to_string(), p.to_string()));
    });
    let high_signal = match s.source {
        HighSource::None => None,
        HighSource::Tool { id, .. } => Some(vocab.tools.name(id).to_string()),
        HighSource::Key { id, .. } => {
            let (key_use, key) = vocab.key(id);
            Some(format!("key:{}:{key}", key_use.as_str()))
        }
        HighSource::Payload(id) => Some(format!("payload:{}", vocab.payloads.name(id))),
        HighSource::C2(id) => Some(format!("c2:{}", vocab.c2.name(id))),
        HighSource::Credential { id, .. } => {
            let (u, p) = vocab.credential(id);
            Some(format!("credential:{u}:{p}"))
        }
    };
    PairExplanation {
        a: ua.to_string(),
        b: ub.to_string(),
        total: s.total,
        threshold: w.threshold,
        edge: s.is_edge(w),
        high: s.high,
        high_signal,
        shared_tooling,
        shared_keys,
        shared_payloads,
        shared_c2,
        vetoed: s.vetoed,
        medium: s.medium,
        shared_commands,
        command_rarity,
        low: s.low,
        shared_credentials,
        credential_rarity,
        asn: s.asn,
        same_asn: if s.asn > 0.0 { a.asn } else { None },
        decision: None,
    }
}
