//! The 23 scopes Speckle defines, with the description and public flag each is registered with.
//!
//! A scope belongs to a server module. Tessera runs Speckle's core module only, so the scopes of
//! the Automate, Workspaces and Gatekeeper modules are known (a client may ask for them by name)
//! but not *registered*: no token, app or `serverInfo` ever carries them, exactly as on a Speckle
//! server with those modules switched off.
//!
//! OpenID Connect's `openid` is Tessera's own and not registered either: no app registers it and
//! no personal token holds it. A client asks for it at `/oauth/authorize`, and the tokens that
//! sign-in buys carry it (they may then read `/oauth/userinfo`, and the answer has an `id_token`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The server module that registers a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Core,
    Automate,
    Workspaces,
    Gatekeeper,
    /// OpenID Connect: granted at the standard authorization endpoint only.
    OpenIdConnect,
}

macro_rules! scopes {
    ($( $variant:ident = $name:literal, $public:literal, $module:ident, $desc:literal; )*) => {
        /// One Speckle scope.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Scope { $( $variant, )* }

        impl Scope {
            /// Every scope Speckle knows, in Speckle's order.
            pub const ALL: &'static [Scope] = &[ $( Scope::$variant, )* ];

            /// The wire name, e.g. `streams:read`.
            pub const fn name(self) -> &'static str {
                match self { $( Scope::$variant => $name, )* }
            }

            /// The description Speckle registers the scope with.
            pub const fn description(self) -> &'static str {
                match self { $( Scope::$variant => $desc, )* }
            }

            /// Whether the scope is listed in `serverInfo.scopes` (offered to users and apps).
            pub const fn is_public(self) -> bool {
                match self { $( Scope::$variant => $public, )* }
            }

            /// The module that registers the scope.
            pub const fn module(self) -> Module {
                match self { $( Scope::$variant => Module::$module, )* }
            }

            /// Parses a wire name; unknown names give `None`.
            pub fn from_name(name: &str) -> Option<Scope> {
                match name { $( $name => Some(Scope::$variant), )* _ => None }
            }
        }
    };
}

scopes! {
    StreamsRead = "streams:read", true, Core,
        "Read your streams, and any associated information (branches, commits, objects).";
    StreamsWrite = "streams:write", true, Core,
        "Create streams on your behalf, and any associated data (branches, commits, objects).";
    ProfileRead = "profile:read", true, Core, "Read your profile information.";
    ProfileWrite = "profile:write", true, Core, "Make actions on your profile.";
    ProfileEmail = "profile:email", true, Core, "Read the email address you registered with.";
    ProfileDelete = "profile:delete", false, Core, "Delete the account with all associated data.";
    UsersRead = "users:read", true, Core, "Read other users' profiles.";
    UsersEmail = "users:email", false, Core, "Access the emails of other users.";
    UsersInvite = "users:invite", false, Core, "Invite others to join this server.";
    ServerStats = "server:stats", true, Core,
        "Request server stats from the API. Only works in conjunction with a \"server:admin\" role.";
    ServerSetup = "server:setup", false, Core,
        "Edit server information. Note: Only server admins will be able to use this token.";
    TokensRead = "tokens:read", false, Core, "Access API tokens.";
    TokensWrite = "tokens:write", false, Core, "Create and delete API tokens.";
    AppsRead = "apps:read", false, Core, "See created or authorized applications.";
    AppsWrite = "apps:write", false, Core, "Register new applications.";
    TokensIntrospect = "tokens:introspect", false, Core,
        "Ask what any token is (RFC 7662 introspection). Only works for server admins.";
    AutomateReportResults = "automate:report-results", true, Automate,
        "Report automation results to the server.";
    AutomateFunctionsRead = "automate-functions:read", true, Automate,
        "See available Speckle Automate functions.";
    AutomateFunctionsWrite = "automate-functions:write", true, Automate,
        "Create and manage Speckle Automate functions.";
    WorkspaceCreate = "workspace:create", true, Workspaces, "Required for the creation of a workspace";
    WorkspaceRead = "workspace:read", true, Workspaces, "Required for reading workspace data";
    WorkspaceUpdate = "workspace:update", true, Workspaces, "Required for editing workspace information";
    WorkspaceDelete = "workspace:delete", true, Workspaces, "Required for deleting workspaces";
    WorkspaceBilling = "workspace:billing", false, Gatekeeper, "Scope for managing workspace billing";
    OpenId = "openid", false, OpenIdConnect, "Sign you in to the app with your Tessera identity.";
}

impl Scope {
    /// Whether this server registers the scope (only the core module runs in Tessera).
    pub const fn is_registered(self) -> bool {
        matches!(self.module(), Module::Core)
    }

    const fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Scope::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown scope `{name}`")))
    }
}

/// A set of scopes, as a bit set (25 scopes fit in a `u32`): cheap to copy into the token cache
/// and to check on every field.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u32);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// Every scope this server registers (what Speckle gives its own web app).
    pub fn registered() -> ScopeSet {
        Scope::ALL
            .iter()
            .filter(|s| s.is_registered())
            .copied()
            .collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn remove(&mut self, scope: Scope) {
        self.0 &= !scope.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_subset(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn union(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    pub fn intersection(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    /// The scopes in Speckle's order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// Space-separated names, the form scopes are stored in.
    pub fn to_names(self) -> String {
        self.iter().map(Scope::name).collect::<Vec<_>>().join(" ")
    }

    /// Parses the stored space-separated form into the scopes this build knows and the names it
    /// does not (which the caller should report, not silently drop).
    pub fn parse_names(names: &str) -> (ScopeSet, Vec<&str>) {
        let mut set = ScopeSet::EMPTY;
        let mut unknown = Vec::new();
        for name in names.split_whitespace() {
            match Scope::from_name(name) {
                Some(scope) => set.insert(scope),
                None => unknown.push(name),
            }
        }
        (set, unknown)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::EMPTY;
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Scope::name)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speckle's 23 scopes, and Tessera's own `tokens:introspect` (RFC 7662) and `openid`.
    #[test]
    fn there_are_25_scopes_with_unique_names() {
        assert_eq!(Scope::ALL.len(), 25);
        let names: std::collections::HashSet<_> = Scope::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), 25);
        assert!(!Scope::TokensIntrospect.is_public());
        assert!(!Scope::OpenId.is_public() && !Scope::OpenId.is_registered());
        for scope in Scope::ALL {
            assert_eq!(Scope::from_name(scope.name()), Some(*scope));
            assert!(!scope.description().is_empty());
        }
    }

    #[test]
    fn core_module_registers_16_scopes_of_which_7_are_public() {
        let registered = ScopeSet::registered();
        assert_eq!(registered.len(), 16, "Speckle's 15 and tokens:introspect");
        let public: Vec<_> = registered
            .iter()
            .filter(|s| s.is_public())
            .map(Scope::name)
            .collect();
        assert_eq!(
            public,
            [
                "streams:read",
                "streams:write",
                "profile:read",
                "profile:write",
                "profile:email",
                "users:read",
                "server:stats"
            ]
        );
        assert!(!registered.contains(Scope::WorkspaceBilling));
    }

    #[test]
    fn set_operations() {
        let a: ScopeSet = [Scope::StreamsRead, Scope::ProfileRead]
            .into_iter()
            .collect();
        let b: ScopeSet = [Scope::StreamsRead].into_iter().collect();
        assert!(b.is_subset(a));
        assert!(!a.is_subset(b));
        assert_eq!(a.intersection(b), b);
        assert_eq!(ScopeSet::parse_names(&a.to_names()), (a, vec![]));
        assert_eq!(a.to_names(), "streams:read profile:read");
        assert_eq!(
            ScopeSet::parse_names("nope:nope streams:read"),
            (b, vec!["nope:nope"])
        );
    }

    #[test]
    fn serde_uses_wire_names() {
        let json = serde_json::to_string(&Scope::TokensWrite).unwrap();
        assert_eq!(json, "\"tokens:write\"");
        assert!(serde_json::from_str::<Scope>("\"nope\"").is_err());
    }
}
