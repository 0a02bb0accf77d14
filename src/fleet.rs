//! Policy sets (`[[policy_set]]`): one policy per member of a list. Owns
//! what a member is (its id and the rules for a members file), how an
//! expanded policy remembers its set, and the spread hash that gives each
//! member its own due time within the set's window.
//!
//! The spread hash is part of the contract: replicas and future versions
//! must agree on every member's due time, so it is FNV-1a (64 bit) written
//! out here, never `std`'s hasher (whose output may change between releases).

use std::fmt;
use std::time::Duration;

/// At most this many members in one set (inline or from a file).
pub const MAX_MEMBERS: usize = 100_000;

/// A members file larger than this is refused unread (100,000 ids of 64
/// characters and their newlines fit).
pub const MAX_MEMBERS_FILE_BYTES: u64 = 8 << 20;

/// A member id: 1-64 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(String);

impl MemberId {
    pub fn parse(id: &str) -> Result<MemberId, &'static str> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > 64 {
            Err("must be 1-64 characters")
        } else if !id.chars().all(allowed) {
            Err("may hold only A-Z, a-z, 0-9, '.', '_' and '-'")
        } else {
            Ok(MemberId(id.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a set does with a member's key when the member leaves the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRemove {
    /// Leave the key alone (`rekey audit` reports it): invariant 1 holds.
    #[default]
    Keep,
    /// Finish a rotation in flight, then revoke the member's current key.
    Revoke,
}

impl OnRemove {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRemove::Keep => "keep",
            OnRemove::Revoke => "revoke",
        }
    }
}

/// The set a policy was expanded from, carried by each member's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMember {
    /// The set's name as written (`tenant-{member}`): the `policy_set` label.
    pub set: String,
    pub member: MemberId,
    pub on_remove: OnRemove,
    /// How far after each schedule tick this member falls due.
    pub offset: Duration,
}

/// FNV-1a, 64 bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The member policy `name`'s place in a `spread` window, in whole seconds:
/// `fnv1a64(name) mod spread`. Zero for a spread under one second.
pub fn spread_offset(name: &str, spread: Duration) -> Duration {
    match spread.as_secs() {
        0 => Duration::ZERO,
        secs => Duration::from_secs(fnv1a64(name.as_bytes()) % secs),
    }
}

/// One problem of a members file, at its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    pub line: usize,
    pub message: String,
}

/// A members file: one id a line; blank lines and lines starting with `#`
/// are skipped, surrounding spaces trimmed. Every bad or repeated id is a
/// problem at its line; past [`MAX_MEMBERS`] ids the reading stops.
pub fn parse_members(text: &str) -> Result<Vec<MemberId>, Vec<LineProblem>> {
    let mut members = Vec::new();
    let mut first_line = std::collections::HashMap::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (line_no, id) = (i + 1, line.trim());
        if id.is_empty() || id.starts_with('#') {
            continue;
        }
        if members.len() == MAX_MEMBERS {
            problems.push(LineProblem {
                line: line_no,
                message: format!("more than {MAX_MEMBERS} members"),
            });
            break;
        }
        match MemberId::parse(id) {
            Err(why) => problems.push(LineProblem {
                line: line_no,
                message: format!("member id {why} (value not shown)"),
            }),
            Ok(member) => match first_line.get(member.as_str()) {
                Some(first) => problems.push(LineProblem {
                    line: line_no,
                    message: format!("duplicate member {:?} (also line {first})", member.as_str()),
                }),
                None => {
                    first_line.insert(member.as_str().to_string(), line_no);
                    members.push(member);
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(members)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite: a change here moves every
        // member's due time in every deployment.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn spread_offsets_are_pinned_and_fall_inside_the_window() {
        let four_hours = Duration::from_secs(4 * 3600);
        assert_eq!(fnv1a64(b"tenant-acme"), 12_586_190_462_362_087_950);
        assert_eq!(
            spread_offset("tenant-acme", four_hours).as_secs(),
            PINNED_ACME
        );
        for i in 0..1000 {
            let offset = spread_offset(&format!("tenant-{i}"), four_hours);
            assert!(offset < four_hours);
        }
        assert_eq!(
            spread_offset("x", Duration::from_millis(500)),
            Duration::ZERO
        );
    }

    /// `fnv1a64("tenant-acme") % 14400`, computed once and written down.
    const PINNED_ACME: u64 = 7950;

    #[test]
    fn spread_offsets_spread_evenly() {
        let hour = Duration::from_secs(3600);
        let mut quarters = [0usize; 4];
        for i in 0..4000 {
            let offset = spread_offset(&format!("tenant-{i}"), hour).as_secs();
            quarters[(offset / 900) as usize] += 1;
        }
        assert!(
            quarters.iter().all(|&n| (800..1200).contains(&n)),
            "{quarters:?}"
        );
    }

    #[test]
    fn member_ids_follow_the_documented_rule() {
        for ok in ["acme", "Acme.Corp_1-x", &"a".repeat(64)] {
            assert!(MemberId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "ü", &"a".repeat(65), "{member}"] {
            assert!(MemberId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_members_file_skips_blanks_and_comments_and_names_bad_lines() {
        let text = "# tenants\nacme\n\n  globex  \nbad id\nacme\n";
        let problems = parse_members(text).unwrap_err();
        assert_eq!(
            problems,
            [
                LineProblem {
                    line: 5,
                    message:
                        "member id may hold only A-Z, a-z, 0-9, '.', '_' and '-' (value not shown)"
                            .into()
                },
                LineProblem {
                    line: 6,
                    message: "duplicate member \"acme\" (also line 2)".into()
                },
            ]
        );
        let good = parse_members("# tenants\nacme\n\n  globex  \n").unwrap();
        let ids: Vec<&str> = good.iter().map(MemberId::as_str).collect();
        assert_eq!(ids, ["acme", "globex"]);
    }

    #[test]
    fn a_members_file_past_the_bound_is_refused_at_the_first_extra_line() {
        let text: String = (0..=MAX_MEMBERS).map(|i| format!("m{i}\n")).collect();
        let problems = parse_members(&text).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, MAX_MEMBERS + 1);
    }
}
