//! Kill-chain phases: the Unified Kill Chain names of SPEC §8 and the ATT&CK
//! tactic ids that map onto them. Used by the evidence model (validation),
//! the identity layer (per-phase command sets) and the campaign layer
//! (hand-offs).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One Unified Kill Chain phase. The order of the variants is the order of
/// the chain, and is also the order used to break ties when two reports of
/// one session disagree on its phase (the later phase wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Reconnaissance,
    ResourceDevelopment,
    Weaponization,
    Delivery,
    SocialEngineering,
    Exploitation,
    Persistence,
    DefenseEvasion,
    CommandAndControl,
    Pivoting,
    Discovery,
    PrivilegeEscalation,
    Execution,
    CredentialAccess,
    LateralMovement,
    Collection,
    Exfiltration,
    Impact,
    Objectives,
}

/// (phase, name, ATT&CK tactic id if one maps to it), in chain order.
const TABLE: [(Phase, &str, Option<&str>); 19] = [
    (Phase::Reconnaissance, "reconnaissance", Some("TA0043")),
    (
        Phase::ResourceDevelopment,
        "resource_development",
        Some("TA0042"),
    ),
    (Phase::Weaponization, "weaponization", None),
    (Phase::Delivery, "delivery", Some("TA0001")),
    (Phase::SocialEngineering, "social_engineering", None),
    (Phase::Exploitation, "exploitation", None),
    (Phase::Persistence, "persistence", Some("TA0003")),
    (Phase::DefenseEvasion, "defense_evasion", Some("TA0005")),
    (
        Phase::CommandAndControl,
        "command_and_control",
        Some("TA0011"),
    ),
    (Phase::Pivoting, "pivoting", None),
    (Phase::Discovery, "discovery", Some("TA0007")),
    (
        Phase::PrivilegeEscalation,
        "privilege_escalation",
        Some("TA0004"),
    ),
    (Phase::Execution, "execution", Some("TA0002")),
    (Phase::CredentialAccess, "credential_access", Some("TA0006")),
    (Phase::LateralMovement, "lateral_movement", Some("TA0008")),
    (Phase::Collection, "collection", Some("TA0009")),
    (Phase::Exfiltration, "exfiltration", Some("TA0010")),
    (Phase::Impact, "impact", Some("TA0040")),
    (Phase::Objectives, "objectives", None),
];

impl Phase {
    /// Every phase in chain order.
    pub const ALL: [Phase; 19] = [
        Phase::Reconnaissance,
        Phase::ResourceDevelopment,
        Phase::Weaponization,
        Phase::Delivery,
        Phase::SocialEngineering,
        Phase::Exploitation,
        Phase::Persistence,
        Phase::DefenseEvasion,
        Phase::CommandAndControl,
        Phase::Pivoting,
        Phase::Discovery,
        Phase::PrivilegeEscalation,
        Phase::Execution,
        Phase::CredentialAccess,
        Phase::LateralMovement,
        Phase::Collection,
        Phase::Exfiltration,
        Phase::Impact,
        Phase::Objectives,
    ];

    /// The UKC name, as written on the wire (`command_and_control`).
    pub fn name(self) -> &'static str {
        TABLE[self as usize].1
    }

    /// The ATT&CK tactic id mapped to this phase, if any.
    pub fn tactic(self) -> Option<&'static str> {
        TABLE[self as usize].2
    }

    /// Parses a UKC phase name (exact, lower snake case).
    pub fn from_name(name: &str) -> Option<Phase> {
        TABLE.iter().find(|row| row.1 == name).map(|row| row.0)
    }

    /// Parses an ATT&CK tactic id (`TA0007`).
    pub fn from_tactic(id: &str) -> Option<Phase> {
        TABLE.iter().find(|row| row.2 == Some(id)).map(|row| row.0)
    }

    /// Dense index (0..19), for per-phase arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_variant_order_and_round_trips() {
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(TABLE[i].0, *p);
            assert_eq!(Phase::from_name(p.name()), Some(*p));
            if let Some(t) = p.tactic() {
                assert_eq!(Phase::from_tactic(t), Some(*p));
            }
        }
    }

    #[test]
    fn spec_mappings() {
        assert_eq!(Phase::from_tactic("TA0007"), Some(Phase::Discovery));
        assert_eq!(Phase::from_tactic("TA0011"), Some(Phase::CommandAndControl));
        assert_eq!(Phase::from_tactic("TA0008"), Some(Phase::LateralMovement));
        assert_eq!(Phase::from_tactic("TA9999"), None);
        assert_eq!(Phase::from_name("Discovery"), None);
        assert_eq!(
            Phase::from_name("lateral_movement"),
            Some(Phase::LateralMovement)
        );
    }
}
