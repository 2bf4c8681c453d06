//! Configuration (DESIGN.md decision 8): command-line flags, then `TESSERA_*` environment
//! variables, then an optional TOML file, then defaults, in that order of precedence. Every
//! setting has a safe default, so `tessera serve` needs none of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "./tessera-data";

/// How the server describes itself in `serverInfo`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerDetails {
    pub name: String,
    pub company: Option<String>,
    pub description: Option<String>,
    pub admin_contact: Option<String>,
    pub terms_of_service: Option<String>,
}

impl Default for ServerDetails {
    fn default() -> Self {
        ServerDetails {
            name: "Tessera".into(),
            company: None,
            description: Some("A Speckle-compatible authentication server.".into()),
            admin_contact: None,
            terms_of_service: None,
        }
    }
}

/// Settings given on the command line or in the environment (clap merges those two).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
}

/// The optional TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    #[serde(default)]
    pub server: Option<ServerDetails>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `None` means the embedded SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// The canonical URL used in redirects and `serverInfo.canonicalUrl`; `None` means the URL of
    /// the bound address.
    pub public_url: Option<String>,
    pub server: ServerDetails,
}

impl Config {
    /// Merges flags/environment over the file over defaults, and checks every value.
    pub fn resolve(overrides: Overrides, file: FileConfig) -> Result<Config, String> {
        let bind = overrides
            .bind
            .or(file.bind)
            .unwrap_or_else(|| DEFAULT_BIND.into());
        let bind: SocketAddr = bind.parse().map_err(|_| {
            format!("bind address {bind:?} is not an IP address and port, like 127.0.0.1:3000")
        })?;
        let database_url = overrides.database_url.or(file.database_url);
        if let Some(url) = &database_url {
            check_database_url(url)?;
        }
        let public_url = overrides
            .public_url
            .or(file.public_url)
            .map(|u| normalize_public_url(&u))
            .transpose()?;
        Ok(Config {
            bind,
            data_dir: overrides
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            database_url,
            public_url,
            server: file.server.unwrap_or_default(),
        })
    }

    /// A configuration for tests and embedding: defaults, with the given database.
    pub fn for_database(database_url: &str) -> Config {
        Config {
            bind: ([127, 0, 0, 1], 0).into(),
            data_dir: DEFAULT_DATA_DIR.into(),
            database_url: Some(database_url.into()),
            public_url: None,
            server: ServerDetails::default(),
        }
    }

    /// The database URL to connect to, creating the data directory for the embedded default.
    pub fn effective_database_url(&self) -> Result<String, String> {
        match &self.database_url {
            Some(url) if url.starts_with("sqlite:") && !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Ok(format!("{url}{sep}mode=rwc"))
            }
            Some(url) => Ok(url.clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir).map_err(|e| {
                    format!(
                        "cannot create data directory {}: {e}",
                        self.data_dir.display()
                    )
                })?;
                let file = self.data_dir.join("tessera.db");
                Ok(format!("sqlite://{}?mode=rwc", file.display()))
            }
        }
    }
}

fn check_database_url(url: &str) -> Result<(), String> {
    let known = ["sqlite:", "postgres:", "postgresql:"];
    if known.iter().any(|p| url.starts_with(p)) {
        Ok(())
    } else {
        Err(format!(
            "database URL {:?} must start with sqlite:// or postgres://",
            redact_url(url)
        ))
    }
}

/// Checks a public URL (an `http`/`https` origin, optionally with a path) and drops a trailing
/// slash.
pub fn normalize_public_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(['?', '#', ' ', '@']) =>
        {
            Ok(trimmed.to_owned())
        }
        _ => Err(format!(
            "public URL {url:?} must be an absolute http:// or https:// URL without query, \
             fragment or credentials, like https://auth.example.com"
        )),
    }
}

/// Hides the password of a database URL, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_and_local() {
        let c = Config::resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(c.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(c.database_url, None);
        assert_eq!(c.public_url, None);
        assert_eq!(c.server.name, "Tessera");
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            bind = "0.0.0.0:4000"
            public_url = "https://file.example.com/"
            data_dir = "/srv/tessera"
            [server]
            name = "Acme auth"
            company = "Acme"
            "#,
        )
        .unwrap();
        let flags = Overrides {
            bind: Some("127.0.0.1:5000".into()),
            ..Default::default()
        };
        let c = Config::resolve(flags, file).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(c.public_url.as_deref(), Some("https://file.example.com"));
        assert_eq!(c.data_dir, PathBuf::from("/srv/tessera"));
        assert_eq!(c.server.name, "Acme auth");
        assert_eq!(c.server.company.as_deref(), Some("Acme"));
    }

    #[test]
    fn bad_values_are_explained() {
        let bad = |o: Overrides| Config::resolve(o, FileConfig::default()).unwrap_err();
        assert!(
            bad(Overrides {
                bind: Some("localhost".into()),
                ..Default::default()
            })
            .contains("not an IP address and port")
        );
        let msg = bad(Overrides {
            database_url: Some("mysql://root:hunter2@db/x".into()),
            ..Default::default()
        });
        assert!(msg.contains("sqlite:// or postgres://"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(
            bad(Overrides {
                public_url: Some("ftp://x".into()),
                ..Default::default()
            })
            .contains("http")
        );
        assert!(toml::from_str::<FileConfig>("colour = \"blue\"").is_err());
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            redact_url("postgres://tessera:s3cret@db:5432/auth"),
            "postgres://tessera:***@db:5432/auth"
        );
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
        let c = Config::for_database("sqlite:///tmp/x.db");
        assert_eq!(
            c.effective_database_url().unwrap(),
            "sqlite:///tmp/x.db?mode=rwc"
        );
    }
}
