//! How authentication weighs in the source selection: chrony's
//! `authselectmode`. Not in RFC 5905, whose selection does not look at
//! authentication.

use ntp_select::SelectOptions;

/// How authenticated and unauthenticated sources are selected together
/// ([`SystemConfig::auth_select`](crate::SystemConfig::auth_select)). A
/// source is authenticated when it has a symmetric key
/// ([`SntpConfig::key`](crate::SntpConfig::key)) or uses NTS. The modes and
/// their names are chrony's (`authselectmode`), so that a spoofer who can
/// answer for an unauthenticated server cannot outvote the authenticated
/// ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum AuthSelectMode {
    /// Unauthenticated sources are never selected.
    Require,
    /// When at least one source is authenticated, the unauthenticated
    /// ones are never selected.
    Prefer,
    /// When both kinds are configured, the authenticated sources get the
    /// `require` and `trust` options: the clock is steered only while one
    /// of them is selectable, and unauthenticated sources that disagree
    /// with them are falsetickers however many they are. The default, as
    /// in chrony.
    #[default]
    Mix,
    /// Authentication plays no part: every source keeps the options it
    /// was given. RFC 5905's selection.
    Ignore,
}

impl AuthSelectMode {
    /// The options a source is selected with, or `None` when it must not
    /// be selected. `configured` are its own options; `authenticated`
    /// whether it is; `any_authenticated` and `any_unauthenticated`
    /// whether the system has sources of each kind.
    #[must_use]
    pub const fn effective(
        self,
        configured: SelectOptions,
        authenticated: bool,
        any_authenticated: bool,
        any_unauthenticated: bool,
    ) -> Option<SelectOptions> {
        match self {
            Self::Require if !authenticated => None,
            Self::Prefer if !authenticated && any_authenticated => None,
            Self::Mix if authenticated && any_unauthenticated => Some(SelectOptions {
                require: true,
                trust: true,
                ..configured
            }),
            _ => Some(configured),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: SelectOptions = SelectOptions::NONE;
    const PREFER: SelectOptions = SelectOptions {
        prefer: true,
        ..SelectOptions::NONE
    };

    #[test]
    fn each_mode_as_chrony_documents_it() {
        use AuthSelectMode::{Ignore, Mix, Prefer, Require};
        // (mode, authenticated, any authenticated, any unauthenticated)
        assert_eq!(Require.effective(PLAIN, false, false, true), None);
        assert_eq!(Require.effective(PREFER, true, true, false), Some(PREFER));
        assert_eq!(Prefer.effective(PLAIN, false, false, true), Some(PLAIN));
        assert_eq!(Prefer.effective(PLAIN, false, true, true), None);
        assert_eq!(Prefer.effective(PLAIN, true, true, true), Some(PLAIN));
        let mixed = Mix.effective(PREFER, true, true, true).unwrap();
        assert!(mixed.require && mixed.trust && mixed.prefer);
        assert_eq!(Mix.effective(PLAIN, true, true, false), Some(PLAIN));
        assert_eq!(Mix.effective(PLAIN, false, true, true), Some(PLAIN));
        for authenticated in [false, true] {
            assert_eq!(
                Ignore.effective(PREFER, authenticated, true, true),
                Some(PREFER)
            );
        }
    }
}
