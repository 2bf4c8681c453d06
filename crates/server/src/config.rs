//! Configuration (docs/ARCHITECTURE.md, "Configuration"): command-line flags, then `TESSERA_*` environment
//! variables, then an optional TOML file, then defaults, in that order of precedence. Every
//! setting has a safe default, so `tessera serve` needs none of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use tessera_core::domain::activity::DEFAULT_RETENTION_DAYS;
use tessera_core::domain::keys::KeyFile;
pub use tessera_core::domain::limits::RateLimits;

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "./tessera-data";
/// How many connections are served at once by default (fewer if the process may not open that
/// many files).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// `rate_limits` in the TOML file: `"on"`, `"off"`, or a table of limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RateLimitSetting {
    Switch(String),
    Limits(RateLimits),
}

/// Reads `on`/`off` (flag, environment or TOML).
pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "rate limits must be \"on\" or \"off\", not {value:?}"
        )),
    }
}

/// Reads a list of trusted proxies: IP addresses or CIDR ranges, separated by commas or spaces.
pub fn parse_proxies(items: &[String]) -> Result<Vec<IpNet>, String> {
    items
        .iter()
        .flat_map(|item| item.split([',', ' ']))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "trusted proxy {item:?} is not an IP address or CIDR range, like \
                         10.0.0.0/8 or 127.0.0.1"
                    )
                })
        })
        .collect()
}

/// How the server describes itself in `serverInfo` until an administrator changes it: the
/// `[server]` table of the configuration file (the core's record, read straight from TOML).
pub type ServerDetails = tessera_core::model::ServerInfoRecord;

/// Settings given on the command line or in the environment (clap merges those two).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    /// `on` or `off`.
    pub rate_limits: Option<String>,
    /// IP addresses or CIDR ranges whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    pub activity_retention_days: Option<u32>,
    pub key_file: Option<PathBuf>,
    /// `full`, `sampled` or `errors`.
    pub access_log: Option<String>,
}

/// Which requests the request log writes a line for (docs/ARCHITECTURE.md, "Logs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// Every request, at info.
    Full,
    /// One request in a hundred at info, and every failed or slow one.
    #[default]
    Sampled,
    /// Only failed (5xx) and slow requests.
    Errors,
}

impl AccessLog {
    pub fn parse(value: &str) -> Result<AccessLog, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(AccessLog::Full),
            "sampled" => Ok(AccessLog::Sampled),
            "errors" => Ok(AccessLog::Errors),
            other => Err(format!(
                "access_log must be full, sampled or errors, not {other:?}"
            )),
        }
    }
}

/// The file the ID token signing keys are sealed with, in the data directory unless named.
pub const DEFAULT_KEY_FILE: &str = "tessera.key";

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); the default.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a mail server on this machine (a local relay or a test sink).
    None,
}

/// `[smtp]` in the TOML file: invitations are emailed when it is given.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Defaults to 587 (STARTTLS), 465 (TLS) or 25 (none).
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Tessera <tessera@example.com>`.
    pub from: String,
    #[serde(default)]
    pub tls: SmtpTls,
}

/// The password never prints.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("tls", &self.tls)
            .finish()
    }
}

impl SmtpSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("smtp.host is empty".into());
        }
        if !self.from.contains('@') {
            return Err(format!("smtp.from {:?} is not an email address", self.from));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("smtp.username and smtp.password go together".into());
        }
        let local = matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "::1");
        if self.tls == SmtpTls::None && !local {
            return Err(format!(
                "smtp.tls = \"none\" is only allowed for a mail server on this machine, not {:?}: \
                 use \"starttls\" or \"tls\"",
                self.host
            ));
        }
        Ok(())
    }
}

/// The optional TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub rate_limits: Option<RateLimitSetting>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    pub activity_retention_days: Option<u32>,
    pub key_file: Option<PathBuf>,
    pub access_log: Option<String>,
    #[serde(default)]
    pub server: Option<ServerDetails>,
    pub smtp: Option<SmtpSettings>,
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
    pub rate_limits: RateLimits,
    /// Peers whose `X-Forwarded-For` names the client; empty means the peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// The most connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Where invitation emails go out; `None` sends none.
    pub smtp: Option<SmtpSettings>,
    /// How many days the access log keeps its lines.
    pub activity_retention_days: u32,
    /// The key file that seals the signing keys in the database (docs/ARCHITECTURE.md, "Signing
    /// keys"), created on first start; `None` keeps a random key in memory (tests, embedding:
    /// only that process can then use the keys it makes).
    pub key_file: Option<PathBuf>,
    /// Which requests are logged.
    pub access_log: AccessLog,
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
        let mut rate_limits = match file.rate_limits {
            None => RateLimits::default(),
            Some(RateLimitSetting::Switch(s)) => RateLimits {
                enabled: parse_switch(&s)?,
                ..RateLimits::default()
            },
            Some(RateLimitSetting::Limits(limits)) => RateLimits {
                enabled: true,
                ..limits
            },
        };
        rate_limits.check()?;
        if let Some(switch) = &overrides.rate_limits {
            rate_limits.enabled = parse_switch(switch)?;
        }
        let trusted_proxies = parse_proxies(
            &overrides
                .trusted_proxies
                .or(file.trusted_proxies)
                .unwrap_or_default(),
        )?;
        let max_connections = overrides
            .max_connections
            .or(file.max_connections)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if let Some(smtp) = &file.smtp {
            smtp.check()?;
        }
        let activity_retention_days = overrides
            .activity_retention_days
            .or(file.activity_retention_days)
            .unwrap_or(DEFAULT_RETENTION_DAYS);
        if !(1..=3650).contains(&activity_retention_days) {
            return Err(format!(
                "activity_retention_days must be between 1 and 3650, not {activity_retention_days}"
            ));
        }
        let data_dir: PathBuf = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let key_file = overrides
            .key_file
            .or(file.key_file)
            .unwrap_or_else(|| data_dir.join(DEFAULT_KEY_FILE));
        let access_log = overrides
            .access_log
            .or(file.access_log)
            .map(|v| AccessLog::parse(&v))
            .transpose()?
            .unwrap_or_default();
        Ok(Config {
            access_log,
            key_file: Some(key_file),
            activity_retention_days,
            smtp: file.smtp,
            rate_limits,
            trusted_proxies,
            max_connections,
            bind,
            data_dir,
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
            rate_limits: RateLimits::default(),
            trusted_proxies: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            smtp: None,
            activity_retention_days: DEFAULT_RETENTION_DAYS,
            key_file: None,
            access_log: AccessLog::default(),
        }
    }

    /// The key file's key, creating the file (mode 0600, with its directory) if it does not
    /// exist; a random key kept in memory when no file is configured.
    pub fn load_key_file(&self) -> Result<KeyFile, String> {
        let Some(path) = &self.key_file else {
            return KeyFile::generate().map_err(|e| e.to_string());
        };
        let shown = path.display();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_shared(path);
                KeyFile::parse(&text).map_err(|e| format!("key file {shown}: {e}"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyFile::generate().map_err(|e| e.to_string())?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                match write_private(path, &key.to_text()) {
                    Ok(()) => {
                        tracing::info!(path = %shown, "created the key file that seals the signing keys");
                        Ok(key)
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(path)
                            .map_err(|e| format!("cannot read key file {shown}: {e}"))?;
                        KeyFile::parse(&text).map_err(|e| format!("key file {shown}: {e}"))
                    }
                    Err(e) => Err(format!("cannot create key file {shown}: {e}")),
                }
            }
            Err(e) => Err(format!("cannot read key file {shown}: {e}")),
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
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Writes a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A key file others can read is worth a warning (it still works: a secret mount may be 0444).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the key file can be read by other users; chmod 600 it"
            );
        }
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
        assert!(c.rate_limits.enabled, "rate limits are on by default");
        assert!(
            c.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
    }

    #[test]
    fn rate_limits_and_proxies() {
        let file: FileConfig = toml::from_str(r#"rate_limits = "off""#).unwrap();
        let c = Config::resolve(Overrides::default(), file).unwrap();
        assert!(!c.rate_limits.enabled);
        let file: FileConfig = toml::from_str("[rate_limits]\nsign_in_per_minute = 3\n").unwrap();
        let c = Config::resolve(Overrides::default(), file.clone()).unwrap();
        assert!(c.rate_limits.enabled);
        assert_eq!(c.rate_limits.sign_in_per_minute, 3);
        assert_eq!(c.rate_limits.registrations_per_hour, 10);
        let off = Overrides {
            rate_limits: Some("off".into()),
            trusted_proxies: Some(vec!["10.0.0.0/8, 127.0.0.1".into()]),
            ..Default::default()
        };
        let c = Config::resolve(off, file).unwrap();
        assert!(!c.rate_limits.enabled, "the flag beats the file");
        assert_eq!(c.trusted_proxies.len(), 2);
        let bad =
            |o: Overrides, f: &str| Config::resolve(o, toml::from_str(f).unwrap()).unwrap_err();
        assert!(
            bad(
                Overrides {
                    rate_limits: Some("sometimes".into()),
                    ..Default::default()
                },
                ""
            )
            .contains("\"on\" or \"off\"")
        );
        assert!(
            bad(
                Overrides {
                    trusted_proxies: Some(vec!["proxy.lan".into()]),
                    ..Default::default()
                },
                ""
            )
            .contains("not an IP address")
        );
        assert!(
            bad(
                Overrides::default(),
                "[rate_limits]\nsign_in_per_minute = 0"
            )
            .contains("at least 1")
        );
        assert!(
            bad(
                Overrides {
                    max_connections: Some(0),
                    ..Default::default()
                },
                ""
            )
            .contains("at least 1")
        );
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
    fn smtp_settings() {
        let file = |text: &str| -> Result<Config, String> {
            let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
            Config::resolve(Overrides::default(), file)
        };
        let config = file("[smtp]\nhost = \"mail.example.com\"\nfrom = \"Tessera <t@example.com>\"\nusername = \"t\"\npassword = \"p\"").unwrap();
        let smtp = config.smtp.unwrap();
        assert_eq!((smtp.tls, smtp.port()), (SmtpTls::Starttls, 587));
        assert!(
            !format!("{smtp:?}").contains("\"p\""),
            "the password never prints"
        );
        let tls =
            file("[smtp]\nhost = \"mail.example.com\"\nfrom = \"t@example.com\"\ntls = \"tls\"")
                .unwrap();
        assert_eq!(tls.smtp.unwrap().port(), 465);
        let plain =
            file("[smtp]\nhost = \"mail.example.com\"\nfrom = \"t@example.com\"\ntls = \"none\"");
        assert!(
            plain
                .unwrap_err()
                .contains("only allowed for a mail server on this machine")
        );
        let local = file(
            "[smtp]\nhost = \"localhost\"\nport = 2525\nfrom = \"t@example.com\"\ntls = \"none\"",
        );
        assert_eq!(local.unwrap().smtp.unwrap().port(), 2525);
        assert!(
            file("[smtp]\nhost = \"m\"\nfrom = \"nobody\"")
                .unwrap_err()
                .contains("smtp.from")
        );
        assert!(
            file("[smtp]\nhost = \"m\"\nfrom = \"a@b.c\"\nusername = \"u\"")
                .unwrap_err()
                .contains("go together")
        );
        assert!(file("[smtp]\nhost = \"m\"\nfrom = \"a@b.c\"\ncolour = 1").is_err());
        assert!(
            Config::resolve(Overrides::default(), FileConfig::default())
                .unwrap()
                .smtp
                .is_none()
        );
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
