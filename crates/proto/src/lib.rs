//! Wire types shared by everything in Tessera: the Speckle scopes and roles, and the
//! token codec. Nothing in here does I/O.

pub mod pkce;
pub mod roles;
pub mod scopes;
pub mod token;

pub use pkce::ChallengeMethod;
pub use roles::{ServerRole, StreamRole};
pub use scopes::{Scope, ScopeSet};
pub use token::{PlainToken, TokenDigest, TokenFormatError};
