//! Access control: CIDR rules and their lookup (RFC 5905, section 9.2
//! and appendix A.5.4 `access()`; RFC 8633, section 3.4).
//!
//! # Which rule applies
//!
//! The rule with the **longest prefix that contains the client address
//! wins** (the most specific rule), whatever its place in the list. Among
//! rules with the *same* prefix, the one listed **last** wins, so a later
//! line overrides an earlier one. An address that no rule contains gets the
//! configured default action. This is the order ntpd's `restrict` and
//! chrony's `allow`/`deny` use, and it makes the answer independent of how
//! the list was sorted: `deny 10.0.0.0/8` and `allow 10.1.0.0/16` let
//! 10.1.2.3 in and keep 10.2.3.4 out in either order.
//!
//! IPv4 and IPv6 rules are separate; an IPv4-mapped IPv6 client address or
//! rule is IPv4 (see [`canonical_ip`]).
//!
//! # Lookup
//!
//! The rules are compiled once into a multibit trie with a stride of 8
//! bits and leaf pushing: every slot of a node already holds the action of
//! the most specific rule covering it, so a lookup reads at most one slot
//! per address octet (4 for IPv4, 16 for IPv6) and stops at the first slot
//! without a child, whatever the number of rules.

use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::prefix::canonical_ip;
use crate::{ConfigError, IpPrefix};

/// The most access-control rules one [`Acl`] takes. With a stride-8 trie
/// each rule adds at most one 1 KiB node per octet of its prefix, so the
/// worst case (all IPv6 /128 rules) is 16 MiB; typical lists of a few
/// hundred short prefixes need well under 1 MiB.
pub const MAX_ACL_RULES: usize = 1024;

/// What the server does with a request from an address (RFC 5905,
/// appendix A.5.4; RFC 5905, section 7.4 for the kiss codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum AccessAction {
    /// Answer without rate limiting.
    Allow,
    /// Drop silently.
    Ignore,
    /// Answer with a Kiss-o'-Death `DENY` ("access denied by remote
    /// server").
    Deny,
    /// Answer with a Kiss-o'-Death `RSTR` ("access denied due to local
    /// policy").
    Restrict,
    /// Answer, subject to the rate limiter.
    Limited,
}

impl AccessAction {
    const ALL: [Self; 5] = [
        Self::Allow,
        Self::Ignore,
        Self::Deny,
        Self::Restrict,
        Self::Limited,
    ];

    const fn to_bits(self) -> u32 {
        match self {
            Self::Allow => 0,
            Self::Ignore => 1,
            Self::Deny => 2,
            Self::Restrict => 3,
            Self::Limited => 4,
        }
    }

    fn from_bits(bits: u32) -> Self {
        match bits {
            0 => Self::Allow,
            1 => Self::Ignore,
            2 => Self::Deny,
            3 => Self::Restrict,
            _ => Self::Limited,
        }
    }
}

impl core::str::FromStr for AccessAction {
    type Err = ConfigError;

    /// Parses `allow`, `ignore`, `deny`, `restrict` or `limited`.
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Self::ALL
            .into_iter()
            .find(|action| action.name() == text)
            .ok_or(ConfigError::PrefixSyntax)
    }
}

impl AccessAction {
    /// The lower-case name used by [`FromStr`](core::str::FromStr).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Ignore => "ignore",
            Self::Deny => "deny",
            Self::Restrict => "restrict",
            Self::Limited => "limited",
        }
    }
}

/// One access-control rule: addresses in `prefix` get `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AclRule {
    /// The addresses the rule covers.
    pub prefix: IpPrefix,
    /// What to do with them.
    pub action: AccessAction,
}

impl AclRule {
    /// A rule.
    #[must_use]
    pub const fn new(prefix: IpPrefix, action: AccessAction) -> Self {
        Self { prefix, action }
    }
}

/// Bits of a [`Slot`] holding the child node index.
const CHILD_BITS: u32 = 29;
const CHILD_MASK: u32 = (1 << CHILD_BITS) - 1;

/// A trie slot: the action of the most specific rule covering it (3 high
/// bits) and the index of the child node (29 low bits, 0 = none: the root
/// is node 0 and is nobody's child).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot(u32);

impl Slot {
    const fn new(action: AccessAction, child: u32) -> Self {
        Self((action.to_bits() << CHILD_BITS) | (child & CHILD_MASK))
    }

    fn action(self) -> AccessAction {
        AccessAction::from_bits(self.0 >> CHILD_BITS)
    }

    const fn child(self) -> u32 {
        self.0 & CHILD_MASK
    }
}

/// One trie node: a slot per value of the next address octet.
type Node = [Slot; 256];

/// A stride-8 trie over the octets of one address family.
#[derive(Clone, Debug)]
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn new(default: AccessAction) -> Self {
        Self {
            nodes: vec![[Slot::new(default, 0); 256]],
        }
    }

    /// Inserts a rule. Rules must arrive by non-decreasing prefix length:
    /// then no slot that a rule covers has children yet, and leaf pushing
    /// stays exact.
    fn insert(&mut self, octets: &[u8], len: u8, action: AccessAction) {
        if len == 0 {
            if let Some(root) = self.nodes.first_mut() {
                root.fill(Slot::new(action, 0));
            }
            return;
        }
        let last = usize::from((len - 1) / 8);
        let bits_in_last = len - 8 * ((len - 1) / 8);
        let mut node = 0usize;
        for &octet in octets.iter().take(last) {
            let Some(&slot) = self.nodes.get(node).and_then(|n| n.get(usize::from(octet))) else {
                return;
            };
            let child = if slot.child() == 0 {
                let Ok(index) = u32::try_from(self.nodes.len()) else {
                    return;
                };
                self.nodes.push([Slot::new(slot.action(), 0); 256]);
                if let Some(parent) = self
                    .nodes
                    .get_mut(node)
                    .and_then(|n| n.get_mut(usize::from(octet)))
                {
                    *parent = Slot::new(slot.action(), index);
                }
                index
            } else {
                slot.child()
            };
            node = usize::try_from(child).unwrap_or(usize::MAX);
        }
        let Some(&octet) = octets.get(last) else {
            return;
        };
        let span = 1usize << (8 - bits_in_last);
        let start = usize::from(octet) & !(span - 1);
        if let Some(slots) = self
            .nodes
            .get_mut(node)
            .and_then(|n| n.get_mut(start..start + span))
        {
            for slot in slots {
                *slot = Slot::new(action, slot.child());
            }
        }
    }

    #[inline]
    fn lookup(&self, octets: &[u8]) -> Option<AccessAction> {
        let mut node = self.nodes.first()?;
        let mut slot = Slot(0);
        for &octet in octets {
            slot = *node.get(usize::from(octet))?;
            let child = slot.child();
            if child == 0 {
                break;
            }
            node = self.nodes.get(usize::try_from(child).ok()?)?;
        }
        Some(slot.action())
    }
}

/// A compiled access-control list; see the [module documentation](self)
/// for which rule applies.
#[derive(Clone, Debug)]
pub struct Acl {
    v4: Trie,
    v6: Trie,
    default: AccessAction,
    rules: usize,
}

impl Acl {
    /// Compiles `rules`, with `default` for addresses no rule covers.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TooManyRules`] above [`MAX_ACL_RULES`].
    pub fn new(default: AccessAction, rules: &[AclRule]) -> Result<Self, ConfigError> {
        if rules.len() > MAX_ACL_RULES {
            return Err(ConfigError::TooManyRules(rules.len()));
        }
        let mut sorted: Vec<&AclRule> = rules.iter().collect();
        // Stable: rules with the same length keep their order, so the later
        // one is inserted later and overrides.
        sorted.sort_by_key(|rule| rule.prefix.len());
        let mut acl = Self {
            v4: Trie::new(default),
            v6: Trie::new(default),
            default,
            rules: rules.len(),
        };
        for rule in sorted {
            match rule.prefix.addr() {
                IpAddr::V4(v4) => acl.v4.insert(&v4.octets(), rule.prefix.len(), rule.action),
                IpAddr::V6(v6) => acl.v6.insert(&v6.octets(), rule.prefix.len(), rule.action),
            }
        }
        Ok(acl)
    }

    /// The action for a client address.
    // Always inlined: it is on every request's path, and the server's
    // `handle` grew past what the compiler inlines on its own.
    #[inline(always)]
    #[must_use]
    pub fn lookup(&self, ip: IpAddr) -> AccessAction {
        let found = match canonical_ip(ip) {
            IpAddr::V4(v4) => self.v4.lookup(&v4.octets()),
            IpAddr::V6(v6) => self.v6.lookup(&v6.octets()),
        };
        found.unwrap_or(self.default)
    }

    /// The action for addresses that no rule covers.
    #[must_use]
    pub const fn default_action(&self) -> AccessAction {
        self.default
    }

    /// How many rules were compiled.
    #[must_use]
    pub const fn rule_count(&self) -> usize {
        self.rules
    }

    /// Heap bytes held by the compiled tries (fixed after construction).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        let node = size_of::<Node>();
        (self.v4.nodes.capacity() + self.v6.nodes.capacity()).saturating_mul(node)
    }
}
