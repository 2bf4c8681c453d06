//! The Tessera client SDK. It grows with the features that need it (login flows, the Speckle
//! account store); for now it re-exports the wire types a client shares with the server.

pub use tessera_proto as proto;
