//! `[kafka.properties]`: the librdkafka properties every client gets (TLS,
//! SASL, timeouts), as the configuration's layers give them.
//!
//! librdkafka's names are dotted (`sasl.password`), and each layer reads a dot
//! as nesting: TOML's bare `sasl.password = "…"` and the environment's
//! `SPROCKET__KAFKA__PROPERTIES__SASL__PASSWORD` (or `…__SASL.PASSWORD`) both
//! arrive as a table `sasl` holding `password`. [`deserialize`] joins such
//! tables back into dotted names, and takes numbers and booleans (an
//! environment value `1500` arrives as a number) as the text librdkafka wants.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// One property's value as a layer gave it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Given {
    Text(String),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Flag(bool),
    Table(BTreeMap<String, Given>),
}

fn flatten(prefix: &str, given: Given, out: &mut BTreeMap<String, String>) {
    let mut put = |v: String| {
        out.insert(prefix.to_owned(), v);
    };
    match given {
        Given::Text(s) => put(s),
        Given::Signed(n) => put(n.to_string()),
        Given::Unsigned(n) => put(n.to_string()),
        Given::Float(x) => put(x.to_string()),
        Given::Flag(b) => put(b.to_string()),
        Given::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
    }
}

/// `[kafka.properties]` as flat librdkafka names and text values.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let mut out = BTreeMap::new();
    flatten("", Given::Table(BTreeMap::deserialize(d)?), &mut out);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use crate::config::{Config, Overrides};

    #[test]
    fn every_layer_gives_flat_names_and_text() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "s.toml",
                concat!(
                    "[kafka.properties]\n",
                    "\"security.protocol\" = \"SASL_SSL\"\n",
                    "sasl.mechanism = \"SCRAM-SHA-512\"\n",
                    "\"transaction.timeout.ms\" = 1500\n",
                ),
            )?;
            jail.set_env("SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME", "render");
            jail.set_env("SPROCKET__KAFKA__PROPERTIES__SASL.PASSWORD", "s3cret");
            jail.set_env(
                "SPROCKET__KAFKA__PROPERTIES__ENABLE__SSL__CERTIFICATE__VERIFICATION",
                "false",
            );
            jail.set_env("SPROCKET__KAFKA__PROPERTIES__SESSION__TIMEOUT__MS", "20000");
            let cfg = Config::load(Some("s.toml".as_ref()), &Overrides::default())
                .map_err(|e| e.to_string())?;
            let got: Vec<(&str, &str)> = cfg
                .kafka
                .properties
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    ("enable.ssl.certificate.verification", "false"),
                    ("sasl.mechanism", "SCRAM-SHA-512"),
                    ("sasl.password", "s3cret"),
                    ("sasl.username", "render"),
                    ("security.protocol", "SASL_SSL"),
                    ("session.timeout.ms", "20000"),
                    ("transaction.timeout.ms", "1500"),
                ]
            );
            // What `sprocket config` prints reads back the same.
            let again: Config = toml::from_str(&cfg.to_toml()).map_err(|e| e.to_string())?;
            assert_eq!(again.kafka.properties, cfg.kafka.properties);
            Ok(())
        });
    }
}
