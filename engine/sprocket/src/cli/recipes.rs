//! `sprocket recipes`: store, list and show named recipes through the API.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::args::ClientArgs;
use super::client::{check, Api};
use super::API_ENV;

#[derive(Debug, Subcommand)]
pub enum RecipesAction {
    /// Stores FILE (a recipe as JSON, `-` for standard input) as the next
    /// version of NAME (an admin key); the same recipe as the latest version
    /// changes nothing.
    #[command(after_help = format!("Example:\n  sprocket recipes put clips clips.json\n\n\
        The recipe's JSON Schema: GET /v1/recipes/schema.\n\n{API_ENV}"))]
    Put {
        name: String,
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lists the built-in recipes and the latest version of each stored one.
    #[command(after_help = format!("Example:\n  sprocket recipes list\n\n{API_ENV}"))]
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Shows a recipe as JSON: its latest version, or `--version N`.
    #[command(after_help = format!("Examples:\n  sprocket recipes show clips\n  \
        sprocket recipes show clips --version 1\n\n{API_ENV}"))]
    Show {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(action: &RecipesAction) -> anyhow::Result<()> {
    match action {
        RecipesAction::Put { name, file, client } => put(&client.api()?, name, file).await,
        RecipesAction::List { client } => list(&client.api()?).await,
        RecipesAction::Show {
            name,
            version,
            client,
        } => show(&client.api()?, name, *version).await,
    }
}

async fn put(api: &Api, name: &str, file: &PathBuf) -> anyhow::Result<()> {
    let body = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the recipe from standard input")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let resp = api
        .http
        .put(format!("{}/v1/recipes/{name}", api.url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let created = resp.status() == reqwest::StatusCode::CREATED;
    let stored = check(resp).await?;
    let version = stored["version"].as_u64().unwrap_or(0);
    if created {
        println!("recipe {name} stored as version {version}");
    } else {
        println!("recipe {name} unchanged: version {version} is this recipe");
    }
    Ok(())
}

/// The phases of a recipe, as `ingest → analyze → …`.
fn phases(recipe: &Value) -> String {
    recipe["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["phase"].as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

async fn list(api: &Api) -> anyhow::Result<()> {
    let all = check(api.get("/v1/recipes").send().await?).await?;
    println!("{:<24} {:<8} {:<32} phases", "name", "version", "stored");
    for r in all["recipes"].as_array().into_iter().flatten() {
        let version = match r["version"].as_u64() {
            Some(v) => v.to_string(),
            None => "built-in".into(),
        };
        println!(
            "{:<24} {:<8} {:<32} {}",
            r["name"].as_str().unwrap_or(""),
            version,
            r["stored_at"].as_str().unwrap_or("-"),
            phases(&r["recipe"])
        );
    }
    Ok(())
}

async fn show(api: &Api, name: &str, version: Option<u32>) -> anyhow::Result<()> {
    let path = match version {
        Some(v) => format!("/v1/recipes/{name}?version={v}"),
        None => format!("/v1/recipes/{name}"),
    };
    let r = check(api.get(&path).send().await?).await?;
    match r["version"].as_u64() {
        Some(v) => println!(
            "# {name} version {v}, stored {} by {}",
            r["stored_at"].as_str().unwrap_or("?"),
            r["stored_by"].as_str().unwrap_or("?")
        ),
        None => println!("# {name} (built-in)"),
    }
    println!("{}", serde_json::to_string_pretty(&r["recipe"])?);
    Ok(())
}
