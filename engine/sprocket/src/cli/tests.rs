//! The command line's shape: each command takes the options it uses and
//! refuses the rest, and every command's help shows an example.

use clap::{CommandFactory, Parser};

use super::{Cli, Command};

fn parse(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(line.split_whitespace())
}

/// Each line is refused for an option its command does not take.
fn refused(lines: &[&str]) {
    for line in lines {
        let err = parse(line).expect_err(line);
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::UnknownArgument,
            "{line}: {err}"
        );
    }
}

#[test]
fn client_commands_refuse_server_options() {
    refused(&[
        "sprocket scale-plan --kafka 127.0.0.1:9092",
        "sprocket submit a.mp4 --database sqlite://x.db",
        "sprocket status j1 --store file:///tmp",
        "sprocket jobs --registry http://r",
        "sprocket keys list --config s.toml",
        "sprocket recipes put r r.json --kafka k",
        "sprocket watch j1 --archive file:///tmp",
    ]);
}

#[test]
fn server_commands_refuse_what_they_do_not_read() {
    refused(&[
        "sprocket migrate --kafka 127.0.0.1:9092",
        "sprocket topics create --database sqlite://x.db",
        "sprocket projector --store file:///tmp",
        "sprocket webhooks --archive file:///tmp",
        "sprocket worker render --api http://x",
        "sprocket registry --kafka k",
        "sprocket keys bootstrap --kafka k",
    ]);
}

#[test]
fn flags_become_the_configuration_they_name() {
    let cli = parse(
        "sprocket worker render --config s.toml --kafka k:9092 --registry http://r \
         --database sqlite://w.db --store file:///s --archive file:///a",
    )
    .unwrap();
    let s = cli.command.settings();
    assert_eq!(s.file.as_deref(), Some(std::path::Path::new("s.toml")));
    let f = &s.flags;
    assert_eq!(
        (
            f.kafka_brokers.as_deref(),
            f.registry_url.as_deref(),
            f.database_url.as_deref(),
            f.store_url.as_deref(),
            f.archive_url.as_deref()
        ),
        (
            Some("k:9092"),
            Some("http://r"),
            Some("sqlite://w.db"),
            Some("file:///s"),
            Some("file:///a")
        )
    );
    let api = parse("sprocket api --api-addr 0.0.0.0:1 --database sqlite://a.db").unwrap();
    let s = api.command.settings();
    assert_eq!(s.flags.api_addr.as_deref(), Some("0.0.0.0:1"));
    assert_eq!(s.flags.database_url.as_deref(), Some("sqlite://a.db"));
    let dev = parse("sprocket dev --kafka k:9092 --data-dir /tmp/d").unwrap();
    let Command::Dev { dev } = &dev.command else {
        panic!("dev")
    };
    assert_eq!(dev.options().kafka.as_deref(), Some("k:9092"));
    let client = parse("sprocket jobs --watch --api http://a:1 --api-key spk_x").unwrap();
    let Command::Jobs { client, watch, .. } = &client.command else {
        panic!("jobs")
    };
    assert!(*watch);
    assert_eq!(
        (client.api.as_str(), client.api_key.as_deref()),
        ("http://a:1", Some("spk_x"))
    );
}

#[test]
fn every_command_shows_an_example() {
    fn check(cmd: &clap::Command, path: &str) {
        let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
        if subs.is_empty() {
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.contains("Example"), "`{path}` --help shows no example");
            return;
        }
        for sub in subs {
            check(sub, &format!("{path} {}", sub.get_name()));
        }
    }
    let cli = Cli::command();
    cli.clone().debug_assert();
    check(&cli, "sprocket");
}
