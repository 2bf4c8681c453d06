//! Who am I on a Speckle server? Reads `SPECKLE_TOKEN` and `SPECKLE_SERVER` from the environment
//! (or a `.env` file in the current directory), as the seeds' scripts do:
//!
//! ```sh
//! SPECKLE_SERVER=http://localhost:3000 SPECKLE_TOKEN=<token> \
//!   cargo run -p tessera-client --example whoami
//! ```

use tessera_client::SpeckleClient;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let client = match SpeckleClient::from_env().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match client.active_user().get().await {
        Ok(Some(user)) => {
            let email = user
                .email
                .unwrap_or_else(|| "no email: profile:email not granted".into());
            println!("{} <{email}> on {}", user.name, client.url());
            std::process::ExitCode::SUCCESS
        }
        Ok(None) => {
            println!(
                "Signed in to {}, but the token cannot read your profile (profile:read).",
                client.url()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
