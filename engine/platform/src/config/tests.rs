//! Loading, checking and printing the configuration.

use std::time::Duration;

use super::*;

#[test]
fn layers_apply_in_order() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "s.toml",
            "[kafka]\nbrokers = \"file:1\"\n[api]\naddr = \"127.0.0.1:1\"\n",
        )?;
        jail.set_env("SPROCKET__API__ADDR", "127.0.0.1:2");
        jail.set_env("SPROCKET__DATABASE__URL", "postgres://x/y");
        let flags = Overrides {
            database_url: Some("sqlite://z.db".into()),
            ..Default::default()
        };
        let c = Config::load(Some(Path::new("s.toml")), &flags).unwrap();
        assert_eq!(c.kafka.brokers, "file:1");
        assert_eq!(c.api.addr, "127.0.0.1:2");
        assert_eq!(c.database.url, "sqlite://z.db");
        Ok(())
    });
}

#[test]
fn the_pool_is_sized_from_the_environment_and_checked() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.database.pool_size, 10);
        jail.set_env("SPROCKET__DATABASE__POOL_SIZE", "24");
        jail.set_env("SPROCKET__DATABASE__POOL_TIMEOUT_MS", "500");
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(
            (c.database.pool_size, c.database.pool_timeout_ms),
            (24, 500)
        );
        for bad in ["0", "65"] {
            jail.set_env("SPROCKET__DATABASE__POOL_SIZE", bad);
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("database.pool_size"), "{e}");
        }
        jail.set_env("SPROCKET__DATABASE__POOL_SIZE", "4");
        jail.set_env("SPROCKET__DATABASE__POOL_TIMEOUT_MS", "0");
        let e = Config::load(None, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("database.pool_timeout_ms"), "{e}");
        Ok(())
    });
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("bad.toml", "[kafka]\nbrokerz = \"x\"\n")?;
        let e = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("brokerz"), "{e}");
        jail.set_env("SPROCKET__STORE__URL", "ftp://x");
        let e = Config::load(None, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("store.url"), "{e}");
        Ok(())
    });
}

#[test]
fn sprocket_config_hides_secrets() {
    let mut c = Config::default();
    c.database.url = "postgres://app:hunter2@db/sprocket".into();
    c.kafka
        .properties
        .insert("sasl.password".into(), "hunter2".into());
    c.kafka
        .properties
        .insert("sasl.username".into(), "worker".into());
    c.registry.url = "https://sr:hunter2@registry:8081".into();
    c.store.url = "s3://media/work?aws_secret_access_key=hunter2&region=eu".into();
    c.archive.url = "s3://media/archive?token=hunter2".into();
    c.archive.cold_url = Some("s3://cold/x?password=hunter2".into());
    let shown = c.redacted().to_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://app:***@db/sprocket"), "{shown}");
    assert!(shown.contains("region=eu"), "{shown}");
    assert!(shown.contains("worker"), "{shown}");
    // A libpq keyword string as the database URL.
    c.database.url = "host=db user=app password=hunter2 dbname=sprocket".into();
    let shown = c.redacted().to_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("dbname=sprocket"), "{shown}");
}

#[test]
fn cors_origins_must_be_origins() {
    let mut c = Config::default();
    c.api.cors_origins = vec![
        "https://app.example.com".into(),
        "http://localhost:3000".into(),
    ];
    c.validate().unwrap();
    for bad in [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/ui",
        "ftp://app.example.com",
        "https://",
        "*",
    ] {
        c.api.cors_origins = vec![bad.into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("api.cors_origins"), "{bad}: {e}");
    }
}

#[test]
fn url_and_object_sources_are_configured_and_checked() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert!(c.ingest.url_allow_private.is_empty());
        assert!(
            !c.ingest.object_allowed("media", "a.mp4"),
            "none by default"
        );
        let fetch = c.ingest.url_fetch();
        assert_eq!(
            (
                fetch.connect_timeout,
                fetch.read_timeout,
                fetch.total_timeout
            ),
            (
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(3600)
            )
        );

        jail.create_file(
            "s.toml",
            "[ingest]\nurl_allow_private = [\"127.0.0.0/8\", \"fd00::/8\"]\nallowed_objects = [\"media/in/\", \"open\"]\n",
        )?;
        let c = Config::load(Some(Path::new("s.toml")), &Overrides::default()).unwrap();
        let blocks: Vec<String> = c
            .ingest
            .url_allow_private
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(blocks, ["127.0.0.0/8", "fd00::/8"]);
        assert!(c.to_toml().contains("\"127.0.0.0/8\""), "{}", c.to_toml());
        assert!(c.ingest.object_allowed("media", "in/a.mp4"));
        assert!(c.ingest.object_allowed("open", "any/key"));
        assert!(!c.ingest.object_allowed("media", "out/a.mp4"));
        assert!(!c.ingest.object_allowed("other", "in/a.mp4"));

        for (key, value, says) in [
            (
                "URL_ALLOW_PRIVATE",
                "[\"127.0.0.1/8\"]",
                "bits set past the /8 prefix",
            ),
            ("URL_ALLOW_PRIVATE", "[\"localhost\"]", "not an IP address"),
            ("URL_ALLOW_PRIVATE", "[\"10.0.0.0/33\"]", "prefix length"),
            (
                "ALLOWED_OBJECTS",
                "[\"s3://media\"]",
                "ingest.allowed_objects",
            ),
            ("ALLOWED_OBJECTS", "[\"/in\"]", "ingest.allowed_objects"),
            ("URL_READ_TIMEOUT_MS", "0", "ingest.url_read_timeout_ms"),
        ] {
            jail.set_env(format!("SPROCKET__INGEST__{key}"), value);
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{key}={value}: {e}");
            jail.clear_env();
        }
        jail.set_env("SPROCKET__INGEST__URL_ALLOW_PRIVATE", "[\"10.0.0.0/33\"]");
        let e = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.to_lowercase().contains("ingest.url_allow_private"),
            "names the key: {e}"
        );
        Ok(())
    });
}

#[test]
fn retention_reads_durations_from_file_and_environment_and_is_checked() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(
            c.retention.work.period(),
            Some(Duration::from_secs(24 * 3600))
        );
        assert_eq!(c.retention.archive.period(), None);
        jail.create_file(
            "r.toml",
            "[retention]\nwork = \"36h\"\narchive = \"30d\"\ncold_after = \"7d\"\n\
             [archive]\nurl = \"memory://\"\ncold_url = \"file:///cold\"\n",
        )?;
        jail.set_env("SPROCKET__RETENTION__UPLOADS", "10s");
        let c = Config::load(Some(Path::new("r.toml")), &Overrides::default()).unwrap();
        assert_eq!(
            c.retention.work.period(),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(c.retention.uploads.period(), Some(Duration::from_secs(10)));
        assert_eq!(
            c.retention.cold_after.period(),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(c.archive.cold_url.as_deref(), Some("file:///cold"));
        // "0" keeps for ever, even as the number an environment variable becomes.
        jail.set_env("SPROCKET__RETENTION__ARCHIVE", "0");
        let c = Config::load(Some(Path::new("r.toml")), &Overrides::default()).unwrap();
        assert_eq!(c.retention.archive.period(), None);
        // What the file says prints back the same.
        let again: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(again, c);
        for (key, value) in [
            ("SPROCKET__RETENTION__WORK", "soon"),
            ("SPROCKET__RETENTION__INTERVAL", "0"),
            // cold tiering after the archive is gone
            ("SPROCKET__RETENTION__ARCHIVE", "1d"),
            ("SPROCKET__ARCHIVE__COLD_URL", "ftp://x"),
        ] {
            jail.set_env(key, value);
            let err = Config::load(Some(Path::new("r.toml")), &Overrides::default());
            assert!(err.is_err(), "{key}={value} was accepted");
            jail.clear_env();
        }
        // cold_after needs a cold store
        jail.set_env("SPROCKET__RETENTION__COLD_AFTER", "1h");
        let err = Config::load(None, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("archive.cold_url"), "{err}");
        Ok(())
    });
}
