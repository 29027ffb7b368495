//! The `strongroom` binary: `serve`, and the admin commands `clients`, `users`, `keys`,
//! `audit`, working on the same database as the server. Changes made here are audited as
//! the admin API's are (`detail.by` = `cli`).

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use strongroom_server::audit::{AdminChange, AuditLog, Operator};
use strongroom_server::{dev, load_config, open_keys, open_store, service, start, state::now};

#[derive(Parser)]
#[command(name = "strongroom", version, about = "A financial-grade OAuth 2.0 / OpenID Connect authorization server")]
struct Cli {
    /// Configuration file (TOML); `STRONGROOM_*` environment variables override it.
    #[arg(long, global = true, env = "STRONGROOM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Manage clients.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print audit events from the store as JSON lines, newest first.
    Audit {
        /// Only the events of this client.
        #[arg(long = "client", value_name = "CLIENT_ID", conflicts_with = "subject")]
        client_id: Option<String>,
        /// Only the events of this user (`sub`; write `--subject=SUB` when it begins with `-`).
        #[arg(long)]
        subject: Option<String>,
        /// At most this many events (1-1000, default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Run a complete FAPI 2.0 flow as the demo client against a development server.
    Flow {
        /// Sign in and approve in your browser instead of letting the demo client post the
        /// forms as the demo user.
        #[arg(long)]
        browser: bool,
    },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client from RFC 7591 metadata JSON (plus `profile`).
    Add {
        /// Metadata file (`-` for standard input).
        #[arg(long)]
        metadata: PathBuf,
    },
    /// Replace a client's metadata (validated again; its profile and secret are kept).
    Update {
        client_id: String,
        /// Metadata file (`-` for standard input).
        #[arg(long)]
        metadata: PathBuf,
    },
    /// List clients.
    List,
    /// Show one client's metadata.
    Show { client_id: String },
    /// Remove a client and revoke its tokens.
    Remove { client_id: String },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user; the password is read from standard input.
    Add {
        username: String,
        /// Profile claims as a JSON object, e.g. '{"name":"Alice","email":"a@example.com"}'.
        #[arg(long, default_value = "{}")]
        claims: String,
    },
    /// Change a user's password (read from standard input).
    Passwd { username: String },
    /// Remove a user and revoke their tokens.
    Remove { username: String },
    /// List users.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys with their state.
    List,
    /// Activate the staged keys, retire the active ones and stage new ones.
    Rotate,
}

/// Client metadata JSON from a file, or from standard input for `-`.
fn read_metadata(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let raw = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&raw).context("metadata: not JSON")
}

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    let p = s.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(anyhow!("password: give it on standard input"));
    }
    Ok(p)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Flow { browser } => {
            let mut opts =
                strongroom_server::demo_flow::FlowOptions::demo_user(config.issuer.clone(), config.data_dir.clone());
            if browser {
                opts.headless = None;
            }
            strongroom_server::demo_flow::run(opts).await?;
            println!("done: a complete FAPI 2.0 flow with a DPoP-bound token");
            Ok(())
        }
        Command::Audit { client_id, subject, limit } => {
            let store = open_store(&config).await?;
            let events =
                strongroom_server::audit::query(&store, &config.audit, client_id.as_deref(), subject.as_deref(), limit)
                    .await?;
            for event in events {
                println!("{event}");
            }
            Ok(())
        }
        Command::Clients { command } => {
            let store = open_store(&config).await?;
            let audit = AuditLog::open(&config.audit, store.clone())?;
            match command {
                ClientsCommand::Add { metadata } => {
                    let value = read_metadata(&metadata)?;
                    let created = service::add_client(&store, &config.client_rules(), value, now()).await?;
                    audit.admin_change(Operator::Cli, AdminChange::ClientAdded { client_id: &created.client_id }).await;
                    let mut out = serde_json::json!({"client_id": created.client_id, "metadata": created.metadata});
                    if let Some(s) = created.client_secret {
                        out["client_secret"] = s.into();
                    }
                    println!("{}", serde_json::to_string_pretty(&out)?);
                }
                ClientsCommand::Update { client_id, metadata } => {
                    let value = read_metadata(&metadata)?;
                    let stored = service::update_client(&store, &config.client_rules(), &client_id, value).await?;
                    audit.admin_change(Operator::Cli, AdminChange::ClientUpdated { client_id: &client_id }).await;
                    println!("{}", serde_json::to_string_pretty(&service::client_view(&stored))?);
                }
                ClientsCommand::List => {
                    for c in store.list_clients().await? {
                        let profile = c.metadata.get("profile").and_then(|p| p.as_str()).unwrap_or("?");
                        let method =
                            c.metadata.get("token_endpoint_auth_method").and_then(|p| p.as_str()).unwrap_or("?");
                        println!("{}\t{}\t{}", c.client_id, profile, method);
                    }
                }
                ClientsCommand::Show { client_id } => {
                    let c = service::get_client(&store, &client_id).await?;
                    println!("{}", serde_json::to_string_pretty(&service::client_view(&c.metadata))?);
                }
                ClientsCommand::Remove { client_id } => {
                    service::remove_client(&store, &client_id).await?;
                    audit.admin_change(Operator::Cli, AdminChange::ClientRemoved { client_id: &client_id }).await;
                    println!("removed {client_id}");
                }
            }
            Ok(())
        }
        Command::Users { command } => {
            let store = open_store(&config).await?;
            let audit = AuditLog::open(&config.audit, store.clone())?;
            match command {
                UsersCommand::Add { username, claims } => {
                    let claims: serde_json::Value = serde_json::from_str(&claims).context("claims: not JSON")?;
                    let user = service::add_user(&store, &username, &read_password()?, claims, now()).await?;
                    audit.admin_change(Operator::Cli, AdminChange::UserAdded { subject: &user.subject }).await;
                    println!("{}", serde_json::to_string_pretty(&service::user_view(&user))?);
                }
                UsersCommand::Passwd { username } => {
                    let subject = service::set_password(&store, &username, &read_password()?).await?;
                    audit.admin_change(Operator::Cli, AdminChange::PasswordSet { subject: &subject }).await;
                    println!("password changed for {username}");
                }
                UsersCommand::Remove { username } => {
                    let subject = service::remove_user(&store, &username).await?;
                    audit.admin_change(Operator::Cli, AdminChange::UserRemoved { subject: &subject }).await;
                    println!("removed {username}");
                }
                UsersCommand::List => {
                    for u in store.list_users().await? {
                        println!("{}\t{}", u.username, u.subject);
                    }
                }
            }
            Ok(())
        }
        Command::Keys { command } => {
            let store = open_store(&config).await?;
            let audit = AuditLog::open(&config.audit, store.clone())?;
            let ring = open_keys(&config, store).await?;
            match command {
                KeysCommand::List => {
                    for k in ring.list().await? {
                        println!("{}\t{}\t{}\tchanged {}", k.kid, k.alg, k.state.as_str(), k.state_changed_at);
                    }
                }
                KeysCommand::Rotate => {
                    let active = service::rotate_keys(&ring, now()).await?;
                    audit.admin_change(Operator::Cli, AdminChange::KeysRotated { active: &active }).await;
                    println!("now active: {}", active.join(", "));
                    println!("running servers pick the change up within 30 seconds");
                }
            }
            Ok(())
        }
    }
}

async fn serve(config: strongroom_server::config::Config) -> anyhow::Result<()> {
    let _logging = strongroom_server::logging::init(&config)?;
    // Refused before seeding, so a refused start writes no demo user anywhere.
    config.check_development_conflicts()?;
    // The development set-up is complete before the listeners answer, so whoever waits for
    // discovery finds the demo clients and their keys.
    let summary = if config.development {
        let store = open_store(&config).await?;
        Some(dev::seed(&config, &store, now()).await?)
    } else {
        None
    };
    let server = start(config.clone()).await?;
    if let Some(summary) = summary {
        println!("{summary}");
    }
    println!("public listener on https://{} , mTLS listener on https://{}", server.public_addr, server.mtls_addr);
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop.send(true);
    });
    server.wait().await
}
