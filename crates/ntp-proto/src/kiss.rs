//! Kiss-o'-Death codes (RFC 5905, section 7.4; IANA "NTP Kiss-o'-Death
//! Codes" registry, which adds NTSN from RFC 8915, section 5.7).

use core::fmt;

/// A kiss code: the reference identifier of a stratum-0 packet
/// (RFC 5905, section 7.4, figure 13, and RFC 8915, section 5.7).
///
/// Every code in the IANA registry is named; anything else is
/// [`KissCode::Unknown`], which is data, not an error.
///
/// `Debug` shows a named code by its variant name (`Rate`) and an unknown
/// one as text when it looks like text (`Unknown("XFOO")`), in
/// hexadecimal otherwise (`Unknown(0x01020304)`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum KissCode {
    /// `ACST`: the association belongs to a unicast server.
    Acst,
    /// `AUTH`: server authentication failed.
    Auth,
    /// `AUTO`: Autokey sequence failed.
    Auto,
    /// `BCST`: the association belongs to a broadcast server.
    Bcst,
    /// `CRYP`: cryptographic authentication or identification failed.
    Cryp,
    /// `DENY`: access denied by the remote server.
    Deny,
    /// `DROP`: lost peer in symmetric mode.
    Drop,
    /// `RSTR`: access denied due to local policy.
    Rstr,
    /// `INIT`: the association has not yet synchronized for the first time.
    Init,
    /// `MCST`: the association belongs to a dynamically discovered server.
    Mcst,
    /// `NKEY`: no key found.
    Nkey,
    /// `NTSN`: Network Time Security negative acknowledgment (RFC 8915,
    /// section 5.7).
    Ntsn,
    /// `RATE`: rate exceeded; the server has temporarily denied access.
    Rate,
    /// `RMOT`: alteration of association from a remote host running ntpdc.
    Rmot,
    /// `STEP`: a step change in system time has occurred, but the
    /// association has not yet resynchronized.
    Step,
    /// Any other four octets, kept as received.
    Unknown([u8; 4]),
}

/// What a client must do on receiving a kiss code (RFC 5905, section 7.4,
/// rules a to d; RFC 8915, section 5.7 for NTSN).
///
/// A client acts on a kiss-o'-death only after checking that it answers a
/// request of its own (its origin timestamp equals the request's transmit
/// timestamp): unauthenticated KoD packets are easy to spoof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KissAction {
    /// DENY, RSTR: demobilize the association and stop sending to this
    /// server (rule a).
    Stop,
    /// RATE: reduce the polling rate now, and again on each further RATE
    /// (rule b).
    ReduceRate,
    /// NTSN: keep polling with the current cookies; if no valid
    /// NTS-protected response arrives by the next poll, run NTS key
    /// establishment again (RFC 8915, section 5.7).
    RenewNtsKeys,
    /// Every other code, including unknown ones and the experimental codes
    /// starting with `X`: no protocol significance, inspect and discard
    /// (rules c and d).
    Ignore,
}

impl KissCode {
    /// Reads a kiss code from the four octets of a reference identifier.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        match &bytes {
            b"ACST" => Self::Acst,
            b"AUTH" => Self::Auth,
            b"AUTO" => Self::Auto,
            b"BCST" => Self::Bcst,
            b"CRYP" => Self::Cryp,
            b"DENY" => Self::Deny,
            b"DROP" => Self::Drop,
            b"RSTR" => Self::Rstr,
            b"INIT" => Self::Init,
            b"MCST" => Self::Mcst,
            b"NKEY" => Self::Nkey,
            b"NTSN" => Self::Ntsn,
            b"RATE" => Self::Rate,
            b"RMOT" => Self::Rmot,
            b"STEP" => Self::Step,
            _ => Self::Unknown(bytes),
        }
    }

    /// The four wire octets.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 4] {
        match self {
            Self::Acst => *b"ACST",
            Self::Auth => *b"AUTH",
            Self::Auto => *b"AUTO",
            Self::Bcst => *b"BCST",
            Self::Cryp => *b"CRYP",
            Self::Deny => *b"DENY",
            Self::Drop => *b"DROP",
            Self::Rstr => *b"RSTR",
            Self::Init => *b"INIT",
            Self::Mcst => *b"MCST",
            Self::Nkey => *b"NKEY",
            Self::Ntsn => *b"NTSN",
            Self::Rate => *b"RATE",
            Self::Rmot => *b"RMOT",
            Self::Step => *b"STEP",
            Self::Unknown(bytes) => bytes,
        }
    }

    /// True for codes starting with `X`, reserved for unregistered
    /// experimentation (RFC 5905, section 7.4, rule c).
    #[must_use]
    pub const fn is_experimental(self) -> bool {
        matches!(self.to_bytes(), [b'X', ..])
    }

    /// What a client must do on receiving this code.
    #[must_use]
    pub const fn action(self) -> KissAction {
        match self {
            Self::Deny | Self::Rstr => KissAction::Stop,
            Self::Rate => KissAction::ReduceRate,
            Self::Ntsn => KissAction::RenewNtsKeys,
            _ => KissAction::Ignore,
        }
    }

    /// The meaning given in RFC 5905, figure 13 (or RFC 8915 for NTSN).
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Acst => "the association belongs to a unicast server",
            Self::Auth => "server authentication failed",
            Self::Auto => "Autokey sequence failed",
            Self::Bcst => "the association belongs to a broadcast server",
            Self::Cryp => "cryptographic authentication or identification failed",
            Self::Deny => "access denied by remote server",
            Self::Drop => "lost peer in symmetric mode",
            Self::Rstr => "access denied due to local policy",
            Self::Init => "the association has not yet synchronized for the first time",
            Self::Mcst => "the association belongs to a dynamically discovered server",
            Self::Nkey => "no key found",
            Self::Ntsn => "NTS negative acknowledgment",
            Self::Rate => "rate exceeded",
            Self::Rmot => "alteration of association from a remote host running ntpdc",
            Self::Step => "a step change in system time has occurred",
            Self::Unknown(_) if self.is_experimental() => "experimental kiss code",
            Self::Unknown(_) => "unknown kiss code",
        }
    }
}

impl From<[u8; 4]> for KissCode {
    fn from(bytes: [u8; 4]) -> Self {
        Self::from_bytes(bytes)
    }
}

impl From<KissCode> for [u8; 4] {
    fn from(code: KissCode) -> Self {
        code.to_bytes()
    }
}

impl fmt::Debug for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Acst => "Acst",
            Self::Auth => "Auth",
            Self::Auto => "Auto",
            Self::Bcst => "Bcst",
            Self::Cryp => "Cryp",
            Self::Deny => "Deny",
            Self::Drop => "Drop",
            Self::Rstr => "Rstr",
            Self::Init => "Init",
            Self::Mcst => "Mcst",
            Self::Nkey => "Nkey",
            Self::Ntsn => "Ntsn",
            Self::Rate => "Rate",
            Self::Rmot => "Rmot",
            Self::Step => "Step",
            Self::Unknown(octets) => {
                return f
                    .debug_tuple("Unknown")
                    .field(&crate::debug::Octets(octets))
                    .finish();
            }
        };
        f.write_str(name)
    }
}

impl fmt::Display for KissCode {
    /// The code as four characters, trailing NULs dropped and any octet
    /// that is not printable ASCII shown as `?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::refid::write_ascii(f, &self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: [&[u8; 4]; 15] = [
        b"ACST", b"AUTH", b"AUTO", b"BCST", b"CRYP", b"DENY", b"DROP", b"RSTR", b"INIT", b"MCST",
        b"NKEY", b"NTSN", b"RATE", b"RMOT", b"STEP",
    ];

    #[test]
    fn debug_names_the_code() {
        extern crate alloc;
        use alloc::format;
        use alloc::string::String;

        for code in REGISTRY {
            let kiss = KissCode::from_bytes(*code);
            // The variant name: the code with only its first letter upper case.
            let name: String = code
                .iter()
                .enumerate()
                .map(|(i, &c)| char::from(if i == 0 { c } else { c.to_ascii_lowercase() }))
                .collect();
            assert_eq!(format!("{kiss:?}"), name);
        }
        assert_eq!(
            format!("{:?}", KissCode::from_bytes(*b"XFOO")),
            r#"Unknown("XFOO")"#
        );
        assert_eq!(
            format!("{:?}", KissCode::from_bytes(*b"AB\0\0")),
            r#"Unknown("AB")"#
        );
        assert_eq!(
            format!("{:?}", KissCode::from_bytes([0, 0, 0, 0])),
            "Unknown(0x00000000)"
        );
        assert_eq!(
            format!("{:?}", KissCode::from_bytes([b'A', 0, b'B', 0])),
            "Unknown(0x41004200)"
        );
    }

    #[test]
    fn every_registry_code_is_named_and_round_trips() {
        for code in REGISTRY {
            let kiss = KissCode::from_bytes(*code);
            assert!(!matches!(kiss, KissCode::Unknown(_)), "{code:?}");
            assert_eq!(kiss.to_bytes(), *code);
            assert_eq!(std::format!("{kiss}").as_bytes(), code);
        }
    }

    #[test]
    fn actions_follow_rfc_5905_section_7_4() {
        assert_eq!(KissCode::Deny.action(), KissAction::Stop);
        assert_eq!(KissCode::Rstr.action(), KissAction::Stop);
        assert_eq!(KissCode::Rate.action(), KissAction::ReduceRate);
        assert_eq!(KissCode::Ntsn.action(), KissAction::RenewNtsKeys);
        for code in REGISTRY {
            let kiss = KissCode::from_bytes(*code);
            if !matches!(
                kiss,
                KissCode::Deny | KissCode::Rstr | KissCode::Rate | KissCode::Ntsn
            ) {
                assert_eq!(kiss.action(), KissAction::Ignore, "{kiss}");
            }
        }
    }

    #[test]
    fn unknown_and_experimental_codes_are_ignored() {
        let experimental = KissCode::from_bytes(*b"XFOO");
        assert_eq!(experimental, KissCode::Unknown(*b"XFOO"));
        assert!(experimental.is_experimental());
        assert_eq!(experimental.action(), KissAction::Ignore);
        // Even an X code that spells a real one in lower case stays unknown.
        let lower = KissCode::from_bytes(*b"deny");
        assert_eq!(lower.action(), KissAction::Ignore);
        assert!(!lower.is_experimental());
        assert_eq!(
            KissCode::from_bytes([0xff, 0, b'A', 0]).action(),
            KissAction::Ignore
        );
        assert_eq!(
            std::format!("{}", KissCode::from_bytes([0xff, b'A', 0, 0])),
            "?A"
        );
    }
}
