//! `sprocket jobs --watch`: the jobs table kept live. The tenant's event
//! stream says when something changed (redrawn at most five times a second);
//! the ages move on every five seconds. On a terminal the screen is redrawn
//! in place; piped, each table follows the last under a time line.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use super::client::{jobs_table, Api, JobFilters};

pub async fn watch(api: &Api, filters: &JobFilters<'_>, limit: u32) -> anyhow::Result<()> {
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let follower = {
        let api = api.clone();
        tokio::spawn(async move {
            super::sse::follow(&api, "/v1/events/stream", |_| match changed.send(()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            })
            .await
        })
    };
    let tty = std::io::stdout().is_terminal();
    let mut ages = tokio::time::interval(Duration::from_secs(5));
    ages.tick().await;
    loop {
        let table = jobs_table(api, filters, limit).await?;
        let now = chrono::Local::now().format("%H:%M:%S");
        let mut out = std::io::stdout().lock();
        if tty {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        writeln!(out, "--- sprocket jobs at {now} (Ctrl-C stops) ---")?;
        write!(out, "{table}")?;
        out.flush()?;
        drop(out);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = ages.tick() => {}
            change = changes.recv() => {
                if change.is_none() {
                    // The stream ended for good: say why.
                    return follower.await?;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                while changes.try_recv().is_ok() {}
            }
        }
    }
    follower.abort();
    Ok(())
}
