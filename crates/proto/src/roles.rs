//! Speckle's server and stream (project) roles. Roles compare by weight: a role satisfies a
//! requirement when its weight is at least the required one.

use std::fmt;

macro_rules! roles {
    ($ty:ident, $doc:literal, $( $variant:ident = $name:literal, $gql:literal, $title:literal, $weight:literal; )*) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $ty { $( $variant, )* }

        impl $ty {
            /// Every role, heaviest first.
            pub const ALL: &'static [$ty] = &[ $( $ty::$variant, )* ];

            /// The wire name, e.g. `server:admin`.
            pub const fn name(self) -> &'static str {
                match self { $( $ty::$variant => $name, )* }
            }

            /// The GraphQL enum value, e.g. `SERVER_ADMIN`.
            pub const fn graphql_name(self) -> &'static str {
                match self { $( $ty::$variant => $gql, )* }
            }

            /// The title Speckle shows for the role.
            pub const fn title(self) -> &'static str {
                match self { $( $ty::$variant => $title, )* }
            }

            pub const fn weight(self) -> u32 {
                match self { $( $ty::$variant => $weight, )* }
            }

            pub fn from_name(name: &str) -> Option<$ty> {
                match name { $( $name => Some($ty::$variant), )* _ => None }
            }

            /// Whether this role is at least as strong as `required`.
            pub const fn satisfies(self, required: $ty) -> bool {
                self.weight() >= required.weight()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

roles! {
    ServerRole, "A user's role on the server.",
    Admin = "server:admin", "SERVER_ADMIN", "Admin", 1000;
    User = "server:user", "SERVER_USER", "User", 100;
    Guest = "server:guest", "SERVER_GUEST", "Guest", 50;
    ArchivedUser = "server:archived-user", "SERVER_ARCHIVED_USER", "Archived", 10;
}

roles! {
    StreamRole, "A user's role on a project (stream).",
    Owner = "stream:owner", "STREAM_OWNER", "Owner", 1000;
    Contributor = "stream:contributor", "STREAM_CONTRIBUTOR", "Can edit", 500;
    Reviewer = "stream:reviewer", "STREAM_REVIEWER", "Can view", 100;
}

impl ServerRole {
    /// What Speckle registers for the `Role` table's description column.
    pub const fn description(self) -> &'static str {
        match self {
            ServerRole::Admin => {
                "Holds supreme autocratic authority, not restricted by written laws, legislature, or customs."
            }
            ServerRole::User => "Has normal access to the server.",
            ServerRole::Guest => "Has limited access to the server.",
            ServerRole::ArchivedUser => "No longer has access to the server.",
        }
    }
}

impl StreamRole {
    pub const fn description(self) -> &'static str {
        match self {
            StreamRole::Owner => {
                "Can edit project, including settings, collaborators and all models"
            }
            StreamRole::Contributor => {
                "Can create models, publish model updates and edit project details"
            }
            StreamRole::Reviewer => "Can view and comment on all models in the project",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_order_roles() {
        assert!(ServerRole::Admin.satisfies(ServerRole::User));
        assert!(ServerRole::User.satisfies(ServerRole::Guest));
        assert!(!ServerRole::Guest.satisfies(ServerRole::User));
        assert!(!ServerRole::ArchivedUser.satisfies(ServerRole::Guest));
        assert!(StreamRole::Owner.satisfies(StreamRole::Contributor));
        assert!(StreamRole::Contributor.satisfies(StreamRole::Reviewer));
        assert!(!StreamRole::Reviewer.satisfies(StreamRole::Contributor));
        assert_eq!(
            ServerRole::ALL
                .iter()
                .map(|r| r.weight())
                .collect::<Vec<_>>(),
            [1000, 100, 50, 10]
        );
        assert_eq!(
            StreamRole::ALL
                .iter()
                .map(|r| r.weight())
                .collect::<Vec<_>>(),
            [1000, 500, 100]
        );
    }

    #[test]
    fn names_round_trip() {
        for role in ServerRole::ALL {
            assert_eq!(ServerRole::from_name(role.name()), Some(*role));
        }
        for role in StreamRole::ALL {
            assert_eq!(StreamRole::from_name(role.name()), Some(*role));
        }
        assert_eq!(ServerRole::from_name("server:root"), None);
    }
}
